"""Celery tasks. Every task takes an outbox message id (or nothing, for beat) and is idempotent.

acks_late + reject_on_worker_lost (settings): a worker killed mid-task leaves the message for
another worker; the outbox sweep republishes anything the broker lost. Idempotency keys make
a second run a no-op (turns: Turn.idempotency_key; notifications: one NotificationDelivery
per alert and channel).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import DatabaseError, InterfaceError

from . import notifications, outbox, services

logger = logging.getLogger(__name__)

_NOTIFY = settings.TRIAGE


@shared_task(
    name="triage.record_turn",
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=30,
)
def record_turn(self, message_id: int) -> str:
    """Store one finished turn from its outbox message (a second run adds nothing)."""
    result = services.record_turn_message(message_id)
    return "stored" if result else "duplicate"


@shared_task(
    name="triage.deliver_notification",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=_NOTIFY["NOTIFY_MAX_RETRIES"],
)
def deliver_notification(self, message_id: int) -> str:
    """Send one escalation notification (email or webhook), retrying with exponential backoff."""
    final = self.request.retries >= self.max_retries
    outcome = notifications.deliver(message_id, final_attempt=final)
    if outcome.status == "retry":
        countdown = get_exponential_backoff_interval(
            factor=_NOTIFY["NOTIFY_BACKOFF_SECONDS"],
            retries=self.request.retries,
            maximum=_NOTIFY["NOTIFY_BACKOFF_MAX_SECONDS"],
            full_jitter=False,
        )
        # Keep the sweep off this message while its own retry is scheduled.
        outbox.lease(message_id, countdown)
        raise self.retry(countdown=countdown, exc=outcome.error)
    return outcome.status


@shared_task(name="triage.sweep_outbox", ignore_result=True)
def sweep_outbox() -> int:
    """Beat: publish outbox messages that were never sent or whose broker copy was lost."""
    sent = outbox.sweep()
    if sent:
        logger.info("outbox sweep republished %d message(s)", sent)
    return sent


@shared_task(name="triage.close_abandoned_sessions", ignore_result=True)
def close_abandoned_sessions() -> int:
    """Beat: sessions with no activity for TRIAGE_ABANDON_AFTER_SECONDS are closed as drop-offs."""
    from .dashboard.housekeeping import close_abandoned

    return close_abandoned()


@shared_task(name="triage.compute_telemetry_aggregates", ignore_result=True)
def compute_telemetry_aggregates() -> int:
    """Beat: per-bucket latency percentiles, interruption, fallback and drop-off rates."""
    from .dashboard.telemetry import compute_recent

    return compute_recent()
