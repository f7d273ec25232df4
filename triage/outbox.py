"""Transactional outbox: durable work for Celery, written in the same transaction as the data.

Writers call :func:`enqueue` inside their ``transaction.atomic()``; the row commits (or rolls
back) with the turn/alert it concerns, so a broker or worker outage cannot lose it. After the
commit the message is handed to Celery from a background thread (the call's writer never
waits on the broker), and Celery beat's :func:`sweep` hands over whatever is still
undelivered: never sent, lost with a broker restart, or held by a worker that died.

Delivery is at least once; handlers are idempotent (keys), so the effect is exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import OutboxMessage

logger = logging.getLogger(__name__)

# topic -> dotted Celery task name that handles it (the task receives the message id).
TOPIC_TASKS: dict[str, str] = {
    "turn.record": "triage.record_turn",
    "notify.email": "triage.deliver_notification",
    "notify.webhook": "triage.deliver_notification",
}

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-dispatch")
        return _executor


def enqueue(topic: str, key: str, payload: dict[str, Any]) -> OutboxMessage:
    """Write one message; must run inside the caller's transaction. A duplicate key raises
    IntegrityError, which rolls the caller's whole transaction back (the event was already stored)."""
    if topic not in TOPIC_TASKS:
        raise ValueError(f"unknown outbox topic {topic!r}")
    message = OutboxMessage.objects.create(topic=topic, key=key[:160], payload=payload)
    transaction.on_commit(lambda: dispatch_soon([message.pk]))
    return message


def dispatch_soon(ids: Iterable[int]) -> None:
    """Hand messages to the broker off the caller's thread (the DB writer must not wait on Redis)."""
    ids = list(ids)
    if ids:
        _pool().submit(_dispatch_in_thread, ids)


def _dispatch_in_thread(ids: list[int]) -> None:
    try:
        dispatch(ids)
    except (OperationalError, InterfaceError) as exc:
        # The database went away after the commit (a restart, a failover): the rows are stored
        # and the sweep or the end-of-call flush hands them on. Expected: no traceback.
        logger.warning(
            "outbox dispatch deferred, database unreachable (%s); the sweep will retry", type(exc).__name__
        )
    except Exception:
        logger.exception("outbox dispatch failed; the sweep will retry")
    finally:
        connections.close_all()  # this thread is idle until the next commit; hold no connection


def wait_dispatched(timeout: float = 5.0) -> None:
    """Block until the dispatch thread has handled everything submitted so far (tests, shutdown)."""
    _pool().submit(lambda: None).result(timeout=timeout)


def dispatch(ids: Iterable[int]) -> int:
    """Publish the given (unprocessed) messages; returns how many the broker took.

    The row is marked dispatched before publishing so an eager task (embedded mode), which
    runs inside ``apply_async``, finds a consistent row; a failed publish clears the mark.
    """
    from config.celery import app

    sent = 0
    for message in OutboxMessage.objects.filter(pk__in=list(ids), processed_at__isnull=True).order_by("id"):
        now = timezone.now()
        OutboxMessage.objects.filter(pk=message.pk).update(dispatched_at=now, attempts=F("attempts") + 1)
        try:
            if app.conf.task_always_eager:
                _run_eager(message)
            else:
                app.send_task(
                    TOPIC_TASKS[message.topic],
                    args=[message.pk],
                    retry=True,
                    retry_policy={
                        "max_retries": 1,
                        "interval_start": 0,
                        "interval_step": 0.2,
                        "interval_max": 0.2,
                    },
                )
        except Exception as exc:  # broker down: leave it for the sweep, don't try the rest now
            OutboxMessage.objects.filter(pk=message.pk, processed_at__isnull=True).update(
                dispatched_at=None, last_error=f"dispatch: {type(exc).__name__}: {exc}"[:2000]
            )
            logger.warning(
                "outbox: broker unavailable (%s); %s left for the sweep", type(exc).__name__, message.key
            )
            break
        sent += 1
    return sent


def _run_eager(message: OutboxMessage) -> None:
    # send_task ignores task_always_eager; embedded mode (no Redis) runs the task in this thread.
    from config.celery import app

    from . import tasks  # noqa: F401  (registers the tasks in this process)

    app.tasks[TOPIC_TASKS[message.topic]].apply(args=[message.pk], throw=False)


def due_for_dispatch(now: dt.datetime | None = None) -> list[int]:
    """Messages the sweep should (re)publish: never dispatched, or dispatched long enough ago
    that the broker copy is presumed lost (broker restart, dead worker with acks_late)."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.TRIAGE["OUTBOX_REDELIVER_AFTER_SECONDS"])
    return list(
        OutboxMessage.objects.filter(processed_at__isnull=True)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
        .order_by("id")
        .values_list("pk", flat=True)[: settings.TRIAGE["OUTBOX_SWEEP_BATCH"]]
    )


def sweep() -> int:
    return dispatch(due_for_dispatch())


def lease(message_id: int, seconds: float) -> None:
    """A task that schedules its own retry pushes the message out of the sweep's reach until then."""
    OutboxMessage.objects.filter(pk=message_id, processed_at__isnull=True).update(
        dispatched_at=timezone.now() + dt.timedelta(seconds=seconds)
    )


def note_error(message_id: int, error: str) -> None:
    OutboxMessage.objects.filter(pk=message_id).update(last_error=error[:2000])


def process(message_id: int, handler: Callable[[OutboxMessage], bool]) -> bool | None:
    """Run ``handler`` for one message under a row lock, once: when it returns True the
    message is marked processed in the same transaction as the handler's writes. Returns the
    handler's answer, or None for an unknown or already processed message (a duplicate)."""
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.processed_at is not None:
            return None
        done = bool(handler(message))
        if done:
            OutboxMessage.objects.filter(pk=message_id).update(processed_at=timezone.now(), last_error="")
    return done


def pending_count() -> int:
    return OutboxMessage.objects.filter(processed_at__isnull=True).count()
