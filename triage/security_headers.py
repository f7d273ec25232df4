"""Security headers on every response Django renders: Content-Security-Policy,
Permissions-Policy, and ``Cache-Control: no-store``.

Django 5.2 has no CSP of its own. The pages need only their own origin: scripts and styles are
files under /static/ (no inline script anywhere; the AudioWorklet modules are same-origin
scripts), ``fetch`` goes to the same origin, and the sockets to the same host over ws/wss
(named explicitly: older browsers do not let ``'self'`` match a ws: URL).

Every dynamic response is ``no-store``: the intake API returns the patient token, and the
dashboard, review pages, their APIs and the admin show patient data. Static files are answered
by whitenoise before this middleware and keep their long cache lifetimes.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.utils.cache import patch_cache_control

PERMISSIONS_POLICY = "microphone=(self), camera=(), geolocation=(), payment=(), usb=()"


def content_security_policy(host: str, secure: bool) -> str:
    sockets = f"wss://{host}" if secure else f"ws://{host} wss://{host}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            f"connect-src 'self' {sockets}",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS
        except DisallowedHost:  # Django's 400 for a bad Host: the strictest policy
            host = None
        if "Content-Security-Policy" not in response:
            if host is None:
                response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
            else:
                response["Content-Security-Policy"] = content_security_policy(host, request.is_secure())
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if "no-store" not in response.get("Cache-Control", ""):
            patch_cache_control(response, no_store=True, private=True)
            # no-store overrides any max-age a view set; say so consistently.
            if "max-age" in response.get("Cache-Control", ""):
                patch_cache_control(response, max_age=0)
        return response
