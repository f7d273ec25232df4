"""Login lockouts (django-axes) become SecurityEvent rows and one WARNING log line.

Audit chains belong to calls; a lockout concerns a clinician or admin login, so it is stored
in its own table. Axes signals a lockout again on every attempt made while locked (each one
also extends the lockout); one event per username and address per cool-off period is enough
to see the attack without a row per guess. The log line names the username and address (no
patient data) so an operator's alerting can pick it up.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from .models import SecurityEvent

logger = logging.getLogger("triage.security")


def record_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    from axes.helpers import get_cool_off
    from django.conf import settings

    cool_off = get_cool_off(request)
    username = (username or "")[:150]
    recent = SecurityEvent.objects.filter(
        kind=SecurityEvent.Kind.LOGIN_LOCKED_OUT,
        username=username,
        ip_address=ip_address or None,
        at__gte=timezone.now() - (cool_off or dt.timedelta(hours=1)),
    )
    if recent.exists():
        return
    path = (getattr(request, "path", "") or "")[:255]
    SecurityEvent.objects.create(
        kind=SecurityEvent.Kind.LOGIN_LOCKED_OUT,
        username=username,
        ip_address=ip_address or None,
        path=path,
        detail={
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_seconds": cool_off.total_seconds() if cool_off else None,
        },
    )
    logger.warning("login locked out: username=%r ip=%s path=%s", username, ip_address, path)


def connect_signals() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(record_lockout, dispatch_uid="triage.login_security.lockout")
