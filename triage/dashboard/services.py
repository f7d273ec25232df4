"""Services (writes) for the dashboard, the clinician actions: acknowledge an alert, take over a
call, override urgency (reads are in selectors.py).

Each one is a ClinicianAction row plus an audit event (actor ``clinician:<username>``, with
the time), written in one transaction; the dashboards and the live call are told after commit.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .. import metrics
from ..audit import append_event
from ..models import AuditEvent, ClinicianAction, EscalationAlert, TriageSession, UrgencyLevel
from . import control

logger = logging.getLogger(__name__)


class ActionRefused(Exception):
    """The action does not apply (already done, session ended). ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


def actor(user) -> str:
    return f"clinician:{user.get_username()}"


def _after_commit(session_id, event: str) -> None:
    def tell():
        try:
            control.dashboards_changed(session_id, event)
        except Exception:  # the action is stored; a missed refresh is not worth failing it
            logger.warning("could not notify dashboards", exc_info=True)

    transaction.on_commit(tell)


def acknowledge_alert(alert_id: int, user, note: str = "") -> EscalationAlert:
    with transaction.atomic():
        alert = EscalationAlert.objects.select_for_update().filter(pk=alert_id).first()
        if alert is None:
            raise ActionRefused("No such alert.", status=404)
        if alert.status != EscalationAlert.Status.OPEN:
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by_id else "someone"
            raise ActionRefused(f"This alert was already acknowledged by {who}.")
        now = timezone.now()
        alert.status = EscalationAlert.Status.ACKNOWLEDGED
        alert.acknowledged_by = user
        alert.acknowledged_at = now
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
        ClinicianAction.objects.create(
            session_id=alert.session_id,
            clinician=user,
            kind=ClinicianAction.Kind.ACKNOWLEDGE,
            reason=note,
            payload={"alert_id": alert.pk, "level": alert.level},
            at=now,
        )
        append_event(
            alert.session_id,
            AuditEvent.Kind.ALERT_ACKNOWLEDGED,
            {"alert_id": alert.pk, "level": alert.level, "note": note, "by": user.get_username()},
            actor=actor(user),
        )
        _after_commit(alert.session_id, "AlertAcknowledged")
    metrics.CLINICIAN_ACTIONS.labels(kind="acknowledge").inc()
    return alert


def take_over(session_id, user) -> TriageSession:
    with transaction.atomic():
        session = TriageSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise ActionRefused("No such session.", status=404)
        if not session.is_open:
            raise ActionRefused("This call has ended.")
        if session.taken_over_by_id:
            raise ActionRefused(f"{session.taken_over_by.get_username()} has already taken over this call.")
        now = timezone.now()
        previous = session.status
        session.status = TriageSession.Status.CLINICIAN
        session.taken_over_by = user
        session.taken_over_at = now
        session.save(update_fields=["status", "taken_over_by", "taken_over_at", "updated_at"])
        ClinicianAction.objects.create(
            session=session,
            clinician=user,
            kind=ClinicianAction.Kind.TAKE_OVER,
            payload={"previous_status": previous},
            at=now,
        )
        append_event(
            session.pk,
            AuditEvent.Kind.CLINICIAN_TOOK_OVER,
            {"previous_status": previous, "by": user.get_username(), "spoken": control.TAKE_OVER_TEXT},
            actor=actor(user),
        )
        name = user.get_full_name() or user.get_username()
        transaction.on_commit(lambda: control.request_take_over(session.pk, name))
        _after_commit(session.pk, "TakeOver")
    metrics.CLINICIAN_ACTIONS.labels(kind="take_over").inc()
    return session


def override_urgency(session_id, user, level: int, reason: str) -> TriageSession:
    if level not in UrgencyLevel.values:
        raise ActionRefused("Unknown urgency level.", status=400)
    if not reason.strip():
        raise ActionRefused("A reason is required to override urgency.", status=400)
    with transaction.atomic():
        session = TriageSession.objects.select_for_update().filter(pk=session_id).first()
        if session is None:
            raise ActionRefused("No such session.", status=404)
        now = timezone.now()
        previous = session.urgency_level
        session.urgency_level = level
        session.urgency_overridden = True
        session.save(update_fields=["urgency_level", "urgency_overridden", "updated_at"])
        ClinicianAction.objects.create(
            session=session,
            clinician=user,
            kind=ClinicianAction.Kind.OVERRIDE_URGENCY,
            reason=reason.strip(),
            payload={"from": previous, "to": level},
            at=now,
        )
        append_event(
            session.pk,
            AuditEvent.Kind.URGENCY_OVERRIDDEN,
            {"from": previous, "to": level, "reason": reason.strip(), "by": user.get_username()},
            actor=actor(user),
        )
        _after_commit(session.pk, "UrgencyOverridden")
    metrics.CLINICIAN_ACTIONS.labels(kind="override_urgency").inc()
    return session
