"""Production start-up refuses placeholder secrets.

``deploy/env.example`` ships values that look like configuration (its SECRET_KEY is long
enough for ``check --deploy``) but are marked ``change-me``. A production process that would
run with one of them stops at start-up with an error naming the variables (daphne when it
loads ``config.asgi``, Celery worker and beat when they start). ``check --deploy`` lists them
at INFO level: the shipped file passes it (even with ``--fail-level WARNING``) and the operator
still sees what to replace before starting anything.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

PLACEHOLDER_MARK = "change-me"


def _is_placeholder(value: str) -> bool:
    return PLACEHOLDER_MARK in value.lower()


def placeholder_secrets() -> list[str]:
    """Names of the settings whose value is a placeholder (empty optional secrets are not)."""
    found = []
    if _is_placeholder(settings.SECRET_KEY) or settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        found.append("SECRET_KEY")
    optional = {
        "EMAIL_HOST_PASSWORD": settings.EMAIL_HOST_PASSWORD,
        "TRIAGE_ESCALATION_WEBHOOK_SECRET": settings.TRIAGE.get("ESCALATION_WEBHOOK_SECRET", ""),
        "METRICS_TOKEN": settings.METRICS_TOKEN,
    }
    found += [name for name, value in optional.items() if value and _is_placeholder(value)]
    password = settings.DATABASES["default"].get("PASSWORD") or ""
    if _is_placeholder(password):
        found.append("DATABASE_URL (password)")
    redis_password = urlsplit(getattr(settings, "REDIS_URL", "") or "").password or ""
    if _is_placeholder(redis_password):
        found.append("REDIS_URL (password)")
    return found


def refuse_placeholder_secrets() -> None:
    """Raise ImproperlyConfigured in production when any secret is still a placeholder."""
    if not getattr(settings, "PRODUCTION", False):
        return
    found = placeholder_secrets()
    if found:
        raise ImproperlyConfigured(
            "Refusing to start in production with placeholder secrets from deploy/env.example: "
            + ", ".join(found)
            + ". Set each to a real secret (for example: python -c "
            "'import secrets; print(secrets.token_urlsafe(50))')."
        )


@checks.register(checks.Tags.security, deploy=True)
def check_placeholder_secrets(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    found = placeholder_secrets()
    if not found:
        return []
    return [
        checks.Info(
            "Placeholder secrets: " + ", ".join(found) + ".",
            hint="Production processes (daphne, Celery) refuse to start until these are real secrets.",
            id="triage.I001",
        )
    ]
