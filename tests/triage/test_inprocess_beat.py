"""Embedded mode's in-process beat: the beat schedule's real tasks run in a thread of the ASGI
process (never on its event loop), on their intervals, start once and stop cleanly."""

import asyncio
import datetime as dt
import json
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from config.celery import app as celery_app
from tests.triage.test_settings import run
from triage import inprocess_beat, services
from triage.channel_groups import call_group
from triage.models import AuditEvent, OutboxMessage, TelemetryAggregate, TriageSession, Turn

SWEEP, ABANDON, TELEMETRY = (
    "triage.sweep_outbox",
    "triage.close_abandoned_sessions",
    "triage.compute_telemetry_aggregates",
)


@pytest.fixture
def fast_schedule(settings):
    """The production schedule's tasks, every 50 ms, in embedded mode (eager Celery)."""
    settings.CELERY_BEAT_SCHEDULE = {
        name: {**entry, "schedule": 0.05} for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    }
    settings.TRIAGE = {**settings.TRIAGE, "INPROCESS_BEAT": True, "ABANDON_AFTER_SECONDS": 60}
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield settings.CELERY_BEAT_SCHEDULE
    assert inprocess_beat.stop(timeout=30), "the in-process beat did not stop"
    celery_app.conf.task_always_eager = saved


def idle_session_with_unrecorded_turn() -> TriageSession:
    """An open call silent for an hour, whose last turn is only in the outbox (never dispatched)."""
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    TriageSession.objects.filter(pk=session.pk).update(
        last_activity_at=timezone.now() - dt.timedelta(hours=1)
    )
    OutboxMessage.objects.create(
        topic="turn.record",
        key=f"patient:{session.pk}:1",
        payload={"session_id": str(session.pk), "index": 0, "speaker": "patient", "text": "hello"},
    )
    return session


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
async def test_schedule_runs_in_process_and_closes_an_abandoned_session(fast_schedule):
    session = await database_sync_to_async(idle_session_with_unrecorded_turn)()
    # Listen where a live call would: closing it as abandoned must reach the call.
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(call_group(session.pk), channel)

    beat = inprocess_beat.start_if_enabled()
    assert beat is not None and beat.running
    assert inprocess_beat.start_if_enabled() is beat  # once per process
    # As under daphne: the first ASGI call hands the server's loop to the beat.
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    await inprocess_beat.AttachLoop(inner, beat)({"type": "http"}, None, None)
    assert seen == ["http"]

    for task in (SWEEP, ABANDON, TELEMETRY):
        assert await asyncio.to_thread(beat.wait_for_runs, task, 2, 60), f"{task} did not run"
        assert beat.failures(task) == 0, task

    @database_sync_to_async
    def stored():
        session.refresh_from_db()
        return (
            session.status,
            session.end_reason,
            AuditEvent.objects.filter(session=session, kind="session_abandoned").count(),
            list(Turn.objects.filter(session=session).values_list("text", flat=True)),
            OutboxMessage.objects.filter(processed_at__isnull=True).count(),
            TelemetryAggregate.objects.filter(metric="dropoff", hits=1).exists(),
        )

    status, reason, abandoned_events, turns, pending, dropoffs = await stored()
    assert (status, reason, abandoned_events) == ("abandoned", "abandoned", 1)  # closed once
    assert turns == ["hello"] and pending == 0  # the sweep recorded the turn
    assert dropoffs  # the telemetry aggregates count the drop-off
    message = await asyncio.wait_for(layer.receive(channel), 10)
    assert message == {"type": "call.end", "reason": "abandoned"}


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_jobs_run_off_the_event_loop_and_a_failure_stops_nothing():
    calls: list[tuple[str, bool]] = []

    def job(task: str) -> None:
        calls.append((task, on_event_loop()))
        if task == "fails":
            raise RuntimeError("a failing job must not stop the others")

    beat = inprocess_beat.InProcessBeat(
        {
            "a": {"task": "fails", "schedule": 0.01},
            "b": {"task": "works", "schedule": dt.timedelta(seconds=0.01)},
        },
        run_task=job,
    ).start()
    assert beat.wait_for_runs("fails", 3, 30) and beat.wait_for_runs("works", 3, 30)
    assert beat.stop(timeout=30) and not beat.running
    assert beat.failures("fails") == beat.runs("fails") and beat.failures("works") == 0
    assert beat.runs("fails") + beat.runs("works") == len(calls)  # nothing ran after the stop
    assert not any(on_loop for _, on_loop in calls)


def test_stop_waits_for_the_job_in_progress():
    started, release = threading.Event(), threading.Event()

    def job(task: str) -> None:
        started.set()
        assert release.wait(30)

    beat = inprocess_beat.InProcessBeat({"slow": {"task": "slow", "schedule": 0.01}}, run_task=job).start()
    assert started.wait(30)
    assert not beat.stop(timeout=0.2)  # still inside the job: it is never cut off
    release.set()
    assert beat.stop(timeout=30) and not beat.running
    assert beat.runs("slow") == 1 and beat.failures("slow") == 0


def test_off_unless_enabled(settings):
    settings.TRIAGE = {**settings.TRIAGE, "INPROCESS_BEAT": False}
    assert inprocess_beat.start_if_enabled() is None and inprocess_beat.current() is None


PROBE = (
    "import json, threading, django; django.setup(); from django.core.management import call_command; "
    "beat = lambda: any(t.name == 'triage-inprocess-beat' for t in threading.enumerate()); "
    "call_command('migrate', verbosity=0); after_migrate = beat(); "
    "import config.asgi; from triage import inprocess_beat; after_asgi = beat(); "
    "print(json.dumps([after_migrate, after_asgi, inprocess_beat.stop(30), beat()]))"
)


@pytest.mark.timeout(300)
def test_embedded_server_starts_it_and_management_commands_do_not(tmp_path):
    result = run({"TRIAGE_VAR_DIR": str(tmp_path)}, "-c", PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    after_migrate, after_asgi, stopped, still_running = json.loads(result.stdout.strip().splitlines()[-1])
    assert not after_migrate and after_asgi and stopped and not still_running
