"""Broker and worker outage in the middle of a live call: nothing is lost, nothing doubles.

A private redis-server is the Celery broker; a real worker and a real beat run against it.
Mid-call the worker is SIGKILLed and Redis is killed (everything queued in it is lost). The
call goes on: turns and an escalation are stored by the writer, the alert still reaches the
dashboard socket (channel layer, not the broker). Then Redis, the worker and beat come back;
beat's outbox sweep republishes what never left or was lost, and every turn and both
notifications arrive exactly once, even after every message is delivered a second time.
"""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from clinical_rules import PatientContext
from config.asgi import application
from tests.triage.clinician_support import (
    CeleryProcess,
    RedisServer,
    SmtpSink,
    WebhookServer,
    async_wait_for,
    celery_broker,
    celery_env,
    make_clinician,
    receive_until,
    ws_headers,
)
from triage import outbox, services
from triage.live import LiveCall
from triage.models import EscalationAlert, NotificationDelivery, OutboxMessage, Turn
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(300)]


async def say(call: LiveCall, turn_id: int, patient_text: str, agent_text: str) -> None:
    """One exchange as the pipeline reports it: the patient's final, then the agent's reply."""
    t = time.monotonic()
    await call._on_event(ev.FinalTranscript(turn_id, patient_text, -0.2, 0.0, t - 1.5, t - 0.2, t))
    await call._on_event(ev.AgentReplyStarted(turn_id, turn_id, "question", agent_text, t))
    await call._on_event(ev.AgentText(turn_id, 0, agent_text, "llm", t))
    await call._on_event(ev.AgentReplyFinished(turn_id, turn_id, agent_text, False, False, time.monotonic()))


@database_sync_to_async
def counts(session_id):
    return {
        "turns": Turn.objects.filter(session_id=session_id).count(),
        "keys": Turn.objects.filter(session_id=session_id).values("idempotency_key").distinct().count(),
        "pending": OutboxMessage.objects.filter(processed_at__isnull=True).count(),
        "sent": NotificationDelivery.objects.filter(status="sent").count(),
        "alerts": EscalationAlert.objects.filter(session_id=session_id).count(),
    }


async def test_worker_and_broker_outage_mid_call(tmp_path):
    redis = RedisServer().start()
    smtp = SmtpSink().start()
    webhook = WebhookServer().start()
    env = celery_env(
        redis.url,
        TRIAGE_ESCALATION_WEBHOOK_URL=webhook.url,
        TRIAGE_ESCALATION_EMAILS="oncall@example.org",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        TRIAGE_OUTBOX_SWEEP_SECONDS="1",
        TRIAGE_OUTBOX_REDELIVER_AFTER_SECONDS="3",
    )
    processes: list[CeleryProcess] = []

    def start_celery():
        for kind in ("worker", "beat"):
            processes.append(CeleryProcess(kind, env, tmp_path).start())

    try:
        with celery_broker(redis.url) as app:
            await asyncio.to_thread(start_celery)
            clinician = await database_sync_to_async(make_clinician)()
            session, _ = await database_sync_to_async(services.create_session)(
                subject="self", age_band="65_plus", pregnant=None, consent=True
            )
            headers = await database_sync_to_async(ws_headers)(clinician)
            dashboard = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
            assert (await dashboard.connect(timeout=10))[0]
            await dashboard.receive_json_from(timeout=10)
            call = LiveCall(
                str(session.pk), PatientContext(subject="self", age_band="65_plus", pregnant=None)
            )
            call.start_recording()

            # 1. Everything up: the worker stores the first exchange.
            await say(call, 1, "I feel dizzy", "How long have you felt dizzy?")
            await async_wait_for(lambda: _has(session.pk, turns=2), 30, "first exchange stored by the worker")

            # 2. Outage: the worker crashes, then the broker dies and loses its queue.
            for process in processes:
                process.kill()
            processes.clear()
            redis.kill()

            await say(call, 2, "Since this morning", "Do you have any chest pain?")
            raised = time.monotonic()
            await call._on_event(
                ev.EscalationRaised(
                    3,
                    1,
                    "call_emergency_services",
                    ("cardiac_chest_pain",),
                    ({"rule_id": "cardiac_chest_pain", "matched": "crushing chest pain"},),
                    "Call emergency services now.",
                    True,
                    raised,
                )  # fmt: skip
            )
            alert = await receive_until(dashboard, lambda m: m["type"] == "alert", timeout=5)
            assert time.monotonic() - raised < 1.0 and alert["reasons"][0]["words"] == ["crushing chest pain"]
            await say(call, 3, "Yes crushing chest pain", "Call emergency services now.")
            await say(call, 4, "My wife is calling them", "Stay on the line.")
            await asyncio.wait_for(call.drain(), 30)  # the writer stored everything
            await asyncio.to_thread(outbox.wait_dispatched, 30)
            during = await counts(session.pk)
            assert during["turns"] == 2, "nothing recorded while Celery is down"
            assert during["pending"] == 6 + 2, "six turns and two notifications wait in the outbox"
            assert webhook.requests == [] and smtp.messages == []

            # 3. Recovery: an empty Redis on the same port, a new worker and beat.
            recovery = time.monotonic()
            redis.start()
            await asyncio.to_thread(start_celery)
            ready = time.monotonic()
            await async_wait_for(
                lambda: _has(session.pk, turns=8, sent=2, pending=0), 90, "outbox drained after recovery"
            )
            drained = time.monotonic()

            # 4. Every message delivered once more (as a broker redelivery would): no effect.
            duplicates = processes[0].log().count("'duplicate'")
            ids = await database_sync_to_async(
                lambda: list(OutboxMessage.objects.values_list("pk", "topic"))
            )()
            for pk, topic in ids:
                app.send_task(outbox.TOPIC_TASKS[topic], args=[pk])
            await async_wait_for(
                lambda: _async(processes[0].log().count("'duplicate'") >= duplicates + len(ids)),
                60,
                "duplicates handled by the worker",
            )
            await call.end("test_done")
            after = await counts(session.pk)
            assert after == {"turns": 8, "keys": 8, "pending": 0, "sent": 2, "alerts": 1}
            assert len(webhook.requests) == 1 and len(smtp.messages) == 1
            texts = await database_sync_to_async(
                lambda: list(
                    Turn.objects.filter(session=session).order_by("index").values_list("text", flat=True)
                )
            )()
            assert texts[:4] == ["I feel dizzy", "How long have you felt dizzy?", "Since this morning",
                                 "Do you have any chest pain?"]  # fmt: skip
            print(
                f"\noutbox (8 turns, 2 notifications) drained {drained - ready:.2f}s after worker+beat were up,"
                f" {drained - recovery:.2f}s after recovery started"
            )
            await dashboard.disconnect()
    finally:
        for process in processes:
            process.stop()
        redis.stop()
        smtp.stop()
        webhook.stop()


async def _async(value):
    return value


@database_sync_to_async
def _has(session_id, **want):
    got = {
        "turns": lambda: Turn.objects.filter(session_id=session_id).count(),
        "sent": lambda: NotificationDelivery.objects.filter(status="sent").count(),
        "pending": lambda: OutboxMessage.objects.filter(processed_at__isnull=True).count(),
        "alerts": lambda: EscalationAlert.objects.filter(session_id=session_id).count(),
    }
    return all(got[k]() == v for k, v in want.items())
