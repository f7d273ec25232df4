"""Celery beat housekeeping: close abandoned sessions (counted as drop-offs)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import metrics
from ..audit import append_event
from ..models import AuditEvent, TriageSession
from . import control
from .selectors import OPEN_STATUSES

logger = logging.getLogger(__name__)


def close_abandoned(now: dt.datetime | None = None) -> int:
    """Close every open session idle for longer than TRIAGE_ABANDON_AFTER_SECONDS. Returns how many."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.TRIAGE["ABANDON_AFTER_SECONDS"])
    closed = 0
    candidates = TriageSession.objects.filter(status__in=OPEN_STATUSES, last_activity_at__lt=cutoff)
    for session_id in list(candidates.values_list("pk", flat=True)[:1000]):
        with transaction.atomic():
            session = TriageSession.objects.select_for_update().get(pk=session_id)
            # Re-check under the lock: the call may have come back to life since the query.
            if session.status not in OPEN_STATUSES or session.last_activity_at >= cutoff:
                continue
            idle = (now - session.last_activity_at).total_seconds()
            previous = session.status
            session.status = TriageSession.Status.ABANDONED
            session.ended_at = now
            session.end_reason = "abandoned"
            session.save(update_fields=["status", "ended_at", "end_reason", "updated_at"])
            append_event(
                session.pk,
                AuditEvent.Kind.SESSION_ABANDONED,
                {"idle_seconds": round(idle, 1), "previous_status": previous, "reason": "no activity"},
                actor="system",
            )
        closed += 1
        metrics.DROPOFFS.inc()
        try:
            # A call still held by some daphne process is ended there; dashboards drop the row.
            control.request_end(session_id, "abandoned")
            control.dashboards_changed(session_id, "SessionAbandoned")
        except Exception:
            logger.warning("could not tell the channel layer about abandoned session", exc_info=True)
    if closed:
        logger.info("closed %d abandoned session(s)", closed)
    return closed
