"""Transactional outbox: written with the data, handled once, swept when lost."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from triage import outbox, services
from triage.models import AuditEvent, EscalationAlert, OutboxMessage, TriageSession, Turn
from voice import events as ev

pytestmark = pytest.mark.django_db


def make_session():
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    return session


def final(turn_id: int, text: str) -> ev.FinalTranscript:
    return ev.FinalTranscript(turn_id, text, -0.2, 0.01, 1.0, 2.0, 2.1)


def reply(reply_id: int, text: str) -> ev.AgentReplyFinished:
    return ev.AgentReplyFinished(reply_id, 1, text, False, False, 3.0)


def test_turn_is_audited_and_queued_in_one_transaction_and_stored_once():
    session = make_session()
    now = timezone.now()
    index = services.record_patient_turn(session.pk, final(1, "I have a headache"), now, now)
    assert index == 1
    message = OutboxMessage.objects.get(key=f"patient:{session.pk}:1")
    assert message.topic == "turn.record" and message.payload["index"] == 1
    assert AuditEvent.objects.filter(session=session, kind="patient_turn").count() == 1
    assert not Turn.objects.filter(session=session).exists()  # Celery's job, not the writer's

    # The same pipeline turn again (a retried writer call) changes nothing.
    assert services.record_patient_turn(session.pk, final(1, "I have a headache"), now, now) is None
    assert AuditEvent.objects.filter(session=session, kind="patient_turn").count() == 1

    assert services.record_turn_message(message.pk) is True
    assert services.record_turn_message(message.pk) is None  # a redelivered task: no-op
    turn = Turn.objects.get(session=session)
    assert (turn.index, turn.speaker, turn.text, turn.pipeline_turn_id) == (
        1,
        "patient",
        "I have a headache",
        1,
    )
    assert turn.idempotency_key == message.key


def test_store_turn_twice_without_the_outbox_lock_still_adds_one_row():
    session = make_session()
    now = timezone.now()
    services.record_agent_turn(session.pk, reply(7, "How long?"), "llm", 900.0, now, now)
    message = OutboxMessage.objects.get(key=f"agent:{session.pk}:7")
    # Two workers racing past the processed flag: ON CONFLICT DO NOTHING keeps one row.
    services.store_turn(message)
    services.store_turn(message)
    assert Turn.objects.filter(session=session).count() == 1
    assert Turn.objects.get(session=session).reply_source == "llm"


def test_turn_order_is_fixed_when_written_not_when_stored():
    session = make_session()
    now = timezone.now()
    services.record_patient_turn(session.pk, final(1, "first"), now, now)
    services.record_agent_turn(session.pk, reply(1, "second"), "llm", None, now, now)
    services.record_patient_turn(session.pk, final(2, "third"), now, now)
    ids = list(OutboxMessage.objects.filter(topic="turn.record").order_by("id").values_list("pk", flat=True))
    for pk in reversed(ids):  # the worker stores them in the opposite order
        services.record_turn_message(pk)
    assert list(Turn.objects.filter(session=session).order_by("index").values_list("text", flat=True)) == [
        "first",
        "second",
        "third",
    ]


def test_rollback_drops_the_message_with_the_data():
    session = make_session()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue("turn.record", "k-rolled-back", {"session_id": str(session.pk)})
        raise RuntimeError("writer failed")
    assert not OutboxMessage.objects.filter(key="k-rolled-back").exists()


def test_escalation_stores_alert_and_queues_both_notifications():
    session = make_session()
    event = ev.EscalationRaised(3, 1, "call_emergency_services", ("chest_pain",),
                                ({"rule_id": "chest_pain", "matched": "crushing chest pain"},),
                                "Call emergency services now.", True, 5.0)  # fmt: skip
    alert = services.record_escalation(session.pk, event)
    assert EscalationAlert.objects.get(pk=alert.pk).reasons[0]["matched"] == "crushing chest pain"
    keys = set(OutboxMessage.objects.filter(topic__startswith="notify.").values_list("key", flat=True))
    assert keys == {f"alert:{alert.pk}:email", f"alert:{alert.pk}:webhook"}
    session.refresh_from_db()
    assert session.status == TriageSession.Status.ESCALATED and session.urgency_level == 1


def test_sweep_picks_undispatched_and_stale_but_not_fresh_or_processed(settings):
    settings.TRIAGE = {**settings.TRIAGE, "OUTBOX_REDELIVER_AFTER_SECONDS": 60}
    session = make_session()
    now = timezone.now()
    never = OutboxMessage.objects.create(
        topic="turn.record", key="never", payload={"session_id": str(session.pk)}
    )
    stale = OutboxMessage.objects.create(topic="turn.record", key="stale", payload={},
                                         dispatched_at=now - dt.timedelta(seconds=120))  # fmt: skip
    OutboxMessage.objects.create(topic="turn.record", key="fresh", payload={}, dispatched_at=now)
    OutboxMessage.objects.create(topic="turn.record", key="leased", payload={},
                                 dispatched_at=now + dt.timedelta(seconds=300))  # fmt: skip
    OutboxMessage.objects.create(topic="turn.record", key="done", payload={}, processed_at=now,
                                 dispatched_at=now - dt.timedelta(seconds=600))  # fmt: skip
    assert outbox.due_for_dispatch(now) == [never.pk, stale.pk]


def test_flush_pending_turns_stores_only_that_sessions_turns():
    a, b = make_session(), make_session()
    now = timezone.now()
    services.record_patient_turn(a.pk, final(1, "a1"), now, now)
    services.record_agent_turn(a.pk, reply(1, "a2"), "fallback", None, now, now)
    services.record_patient_turn(b.pk, final(1, "b1"), now, now)
    assert services.flush_pending_turns(a.pk) == 2
    assert services.flush_pending_turns(a.pk) == 0
    assert Turn.objects.filter(session=a).count() == 2 and not Turn.objects.filter(session=b).exists()
    assert OutboxMessage.objects.filter(processed_at__isnull=True).count() == 1  # b1 is still queued


def test_unknown_topic_is_refused():
    with pytest.raises(ValueError):
        outbox.enqueue("nope", "k", {})


@pytest.mark.django_db(transaction=True)
def test_embedded_mode_runs_the_tasks_eagerly_after_commit():
    """No Redis (the embedded default): the dispatch thread runs each task in-process."""
    from config.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        session = make_session()
        now = timezone.now()
        services.record_patient_turn(session.pk, final(1, "eager"), now, now)
        outbox.wait_dispatched()
        assert Turn.objects.get(session=session).text == "eager"
        assert OutboxMessage.objects.get(topic="turn.record").processed_at is not None
    finally:
        app.conf.task_always_eager = saved
