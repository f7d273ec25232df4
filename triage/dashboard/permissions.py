"""Who may see clinician pages and sockets.

Every clinician page needs a Django login with ``triage.view_clinical_dashboard`` (the
"clinicians" group has it; superusers have everything). Actions also need
``triage.add_clinicianaction``. A patient token is never a credential here: patients have
no Django login, so a token in a URL, header or cookie opens nothing.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse

VIEW_PERMISSION = "triage.view_clinical_dashboard"
ACT_PERMISSION = "triage.add_clinicianaction"


def can_view(user) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.is_active and user.has_perm(VIEW_PERMISSION)
    )


def can_act(user) -> bool:
    return can_view(user) and user.has_perm(ACT_PERMISSION)


def clinician_required(view=None, *, act: bool = False, api: bool = False):
    """Pages redirect an anonymous visitor to the login; APIs answer 401. A signed-in user
    without the permission gets 403 either way."""

    def decorator(func):
        @wraps(func)
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                if api:
                    return JsonResponse({"error": "login_required"}, status=401)
                return redirect_to_login(request.get_full_path())
            if not (can_act(user) if act else can_view(user)):
                if api:
                    return JsonResponse({"error": "forbidden"}, status=403)
                raise PermissionDenied
            return func(request, *args, **kwargs)

        return wrapped

    return decorator(view) if view is not None else decorator
