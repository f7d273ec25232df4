"""A semantic-safety-net hit on the Django side: a dashboard alert and an audited row, no level.

Real PostgreSQL and the real Redis channel layer. The hit is built directly (the matching itself
is tested in tests/clinical_rules/test_safety_net.py with the real model).
"""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from clinical_rules import PatientContext
from clinical_rules.safety_net import SafetyNetHit
from triage import services
from triage.channel_groups import DASHBOARD_GROUP
from triage.dashboard import timeline
from triage.live import LiveCall
from triage.models import AuditEvent, EscalationAlert, OutboxMessage, TriageSession

pytestmark = [pytest.mark.services]

HIT = SafetyNetHit(
    description_id="SN-CARDIAC-ATYPICAL",
    label="Possible heart attack without typical chest pain",
    description="an ache between my shoulder blades and i feel faint and clammy",
    score=0.74,
    threshold=0.58,
    question_id="general.chest_pain",
    question="Is there any pain or pressure in the chest?",
    provenance=("American Heart Association: Warning signs of a heart attack",),
    window="a dull ache between my shoulders and i've gone all clammy",
    bank_version="test",
)


def make_session():
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    TriageSession.objects.filter(pk=session.pk).update(urgency_level=4, disposition="primary_care_days")
    return session


@pytest.mark.django_db
def test_the_alert_is_stored_and_audited_but_changes_no_level_and_pages_no_one():
    session = make_session()
    alert = services.record_safety_net_alert(session.pk, HIT.to_dict(), 4, on_partial=True, check_ms=7.25)
    stored = EscalationAlert.objects.get(pk=alert.pk)
    assert stored.disposition == "possible_red_flag" and stored.status == EscalationAlert.Status.OPEN
    assert stored.rule_ids == ["SN-CARDIAC-ATYPICAL"] and stored.on_partial
    assert stored.reasons[0]["label"].endswith("— rules did not fire") and stored.reasons[0]["level"] is None
    session.refresh_from_db()
    assert session.urgency_level == 4 and session.disposition == "primary_care_days"
    assert session.status != TriageSession.Status.ESCALATED
    assert not OutboxMessage.objects.filter(topic__startswith="notify.").exists()
    event = AuditEvent.objects.get(session=session, kind="safety_net_alert")
    assert event.actor == "safety_net"
    assert event.payload["entry_id"] == "SN-CARDIAC-ATYPICAL" and event.payload["check_ms"] == 7.2
    assert "clammy" not in str(event.payload)  # the caller's words stay in the alert, not the audit log
    items = [i for i in timeline.build(session)["items"] if i.kind == "alert"]
    assert [i.title for i in items] == [
        "Possible red flag (SN-CARDIAC-ATYPICAL, similarity 0.74) — rules did not fire"
    ]


@pytest.mark.django_db(transaction=True)
async def test_the_live_call_alerts_dashboards_first_then_stores_it():
    session = await database_sync_to_async(make_session)()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(DASHBOARD_GROUP, channel)
    try:
        call = LiveCall(str(session.pk), PatientContext())
        await call._on_safety_net_hit(HIT, True, 6.0)
        message = await asyncio.wait_for(layer.receive(channel), 5)
    finally:
        await layer.group_discard(DASHBOARD_GROUP, channel)
    assert message["type"] == "escalation.raised" and message["kind"] == "safety_net"
    assert message["disposition"] == "possible_red_flag" and message["level"] is None
    assert message["reasons"][0]["rule_id"] == "SN-CARDIAC-ATYPICAL"
    rows = await database_sync_to_async(list)(EscalationAlert.objects.filter(session_id=session.pk))
    assert [r.disposition for r in rows] == ["possible_red_flag"] and rows[0].level == 3


@pytest.mark.django_db(transaction=True)
async def test_a_partial_the_rules_do_not_place_urgently_raises_one_alert_through_the_real_net(monkeypatch):
    """LiveCall -> SafetyNetRunner -> the real MiniLM net -> dashboard + stored alert + queued question."""
    import voice.safety_net_runner as runner_mod
    from voice import events as ev

    # the net alone: the learned scorer's own live path is tested in test_emergency_scorer.py, and
    # this statement sits near its threshold, so whether it also raises depends on the model file
    monkeypatch.setenv("TRIAGE_EMERGENCY_SCORER", "0")

    net = await asyncio.to_thread(runner_mod.load_safety_net)
    assert net is not None, "the bundled embedding model must load"
    session = await database_sync_to_async(make_session)()
    call = LiveCall(str(session.pk), PatientContext())
    text = "there's a dull ache between my shoulders and I've gone all clammy and lightheaded"
    call.interview.observe_partial(text)
    assert not call.interview.escalated and (call.interview.assessment.level or 5) > 2
    await call._on_event(ev.PartialTranscript(0, text, text, -0.2, 0.01, 1.0))
    await call._on_event(ev.FinalTranscript(0, text, -0.2, 0.01, 0.5, 1.5, 1.6))
    for _ in range(200):  # the checks run in threads; wait for them to land
        if not call._tasks:
            break
        await asyncio.sleep(0.05)
    rows = await database_sync_to_async(list)(EscalationAlert.objects.filter(session_id=session.pk))
    assert [(r.disposition, r.rule_ids, r.on_partial) for r in rows] == [
        ("possible_red_flag", ["SN-CARDIAC-ATYPICAL"], True)  # once per entry: the final adds none
    ]
    call.interview.observe_final(text)
    assert call.interview.next_prompt().question_id == "general.chest_pain"
    assert len(call.safety_net.check_ms) == 2
