"""Live dashboard: snapshot, live rows, alerts from a live call, clinician actions, review, telemetry.

Events enter a real LiveCall through the callback the voice pipeline calls (``_on_event``), so
they take the production path: straight to the dashboards for alerts, and through the ordered
writer, services.py and the channel layer (Redis) for everything else.
"""

import asyncio
import datetime as dt
import struct
import time
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from clinical_rules import PatientContext
from config.asgi import application
from tests.triage.clinician_support import make_clinician, receive_until, ws_headers
from triage import services
from triage.dashboard import housekeeping
from triage.dashboard.control import TAKE_OVER_TEXT
from triage.live import LiveCall
from triage.models import (
    AuditEvent,
    ClinicianAction,
    EscalationAlert,
    LatencySample,
    TriageSession,
    Turn,
)
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Shaped like clinical_rules' Finding.to_dict().
REASONS = (
    {"rule_id": "cardiac_chest_pain", "label": "Chest pain with red flags", "evidence_text": "crushing chest pain",
     "words": ["crushing chest pain"], "assertion": "present", "explanation": "Crushing central chest pain."},
    {"rule_id": "breathless", "label": "Severe breathlessness", "evidence_text": "can't breathe",
     "words": ["can't breathe"], "assertion": "present", "explanation": "Cannot breathe."},
)  # fmt: skip


def new_session(**fields):
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    if fields:
        TriageSession.objects.filter(pk=session.pk).update(**fields)
    return session


async def dashboard_socket(user):
    communicator = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=await database_sync_to_async(ws_headers)(user)
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    snapshot = await communicator.receive_json_from(timeout=10)
    assert snapshot["type"] == "snapshot"
    return communicator, snapshot


class PatientSide:
    """Collects what LiveCall sends to the patient's socket."""

    def __init__(self):
        self.json: list[dict] = []
        self.audio: list[bytes] = []

    async def send_json(self, message):
        self.json.append(message)

    async def send_bytes(self, data):
        self.audio.append(data)


async def live_call(session) -> tuple[LiveCall, PatientSide]:
    call = LiveCall(str(session.pk), PatientContext(subject="self", age_band="18_to_64", pregnant=None))
    call.start_recording()
    patient = PatientSide()
    call.attach(patient.send_json, patient.send_bytes)
    return call, patient


def escalation(t: float, turn_id: int = 2) -> ev.EscalationRaised:
    return ev.EscalationRaised(turn_id, 1, "call_emergency_services", ("cardiac_chest_pain", "breathless"), REASONS,
                               "Call emergency services now.", True, t)  # fmt: skip


async def test_snapshot_lists_open_sessions_escalated_first():
    user = await database_sync_to_async(make_clinician)()
    calm = await database_sync_to_async(new_session)(urgency_level=4, latest_partial="a mild rash")
    urgent = await database_sync_to_async(new_session)()
    await database_sync_to_async(services.record_escalation)(urgent.pk, escalation(1.0))
    ended = await database_sync_to_async(new_session)(status="ended")
    communicator, snapshot = await dashboard_socket(user)
    ids = [row["id"] for row in snapshot["sessions"]]
    assert ids.index(str(urgent.pk)) < ids.index(str(calm.pk)) and str(ended.pk) not in ids
    first = snapshot["sessions"][0]
    assert first["escalated"] and first["open_alerts"][0]["reasons"][0]["words"] == ["crushing chest pain"]
    calm_row = next(r for r in snapshot["sessions"] if r["id"] == str(calm.pk))
    assert calm_row["latest_partial"] == "a mild rash" and calm_row["urgency_level"] == 4
    assert calm_row["duration_s"] >= 0 and calm_row["state"] == "idle"
    await communicator.disconnect()


async def test_live_call_updates_and_alert_reach_the_dashboard_within_a_second():
    user = await database_sync_to_async(make_clinician)()
    session = await database_sync_to_async(new_session)()
    communicator, _ = await dashboard_socket(user)
    call, patient = await live_call(session)

    t = time.monotonic()
    await call._on_event(ev.StateChanged("listening", "user_speaking", "speech", 2, t))
    await call._on_event(
        ev.PartialTranscript(2, "I have crushing chest pain", "I have crushing", -0.3, 0.0, t)
    )
    row = await receive_until(
        communicator, lambda m: m["type"] == "session" and m["session"]["latest_partial"], timeout=5
    )
    assert row["session"]["latest_partial"] == "I have crushing chest pain"
    assert row["session"]["state"] == "user_speaking"

    raised = time.monotonic()
    await call._on_event(escalation(raised))
    # the rules' alert (a warm safety net may already have sent its own "possible red flag" for
    # the injected partial, which this call's interview never saw)
    alert = await receive_until(
        communicator, lambda m: m["type"] == "alert" and m["kind"] == "rules", timeout=5
    )
    latency = time.monotonic() - raised
    assert alert["session_id"] == str(session.pk) and alert["level"] == 1 and alert["on_partial"]
    assert [r["words"] for r in alert["reasons"]] == [["crushing chest pain"], ["can't breathe"]]
    assert 0 <= alert["delivery_ms"] < 1000
    assert latency < 1.0, f"alert took {latency:.3f}s to reach the dashboard socket"

    # Then the stored alert arrives with the row (its id is what Acknowledge needs).
    stored = await receive_until(
        communicator, lambda m: m["type"] == "session" and m["session"]["open_alerts"], timeout=5
    )
    assert stored["session"]["status"] == "escalated"
    assert any(m["type"] == "escalation" for m in patient.json)
    await call.end("test_done")
    sample = await database_sync_to_async(
        lambda: LatencySample.objects.filter(session=session, stage="alert_delivery").first()
    )()
    assert sample is not None and sample.duration_ms < 1000
    await communicator.disconnect()


async def test_acknowledge_is_audited_with_who_and_when():
    user = await database_sync_to_async(make_clinician)("nurse_ann", first_name="Ann")
    session = await database_sync_to_async(new_session)()
    alert = await database_sync_to_async(services.record_escalation)(session.pk, escalation(1.0))
    communicator, _ = await dashboard_socket(user)
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    response = await database_sync_to_async(client.post)(
        f"/dashboard/alerts/{alert.pk}/acknowledge", {"note": "Calling back"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json()["alert"]["acknowledged_by"] == "nurse_ann"
    row = await receive_until(communicator, lambda m: m["type"] == "session", timeout=5)
    assert row["session"]["open_alerts"] == []

    again = await database_sync_to_async(client.post)(
        f"/dashboard/alerts/{alert.pk}/acknowledge", HTTP_ACCEPT="application/json"
    )
    assert again.status_code == 409 and "nurse_ann" in again.json()["message"]

    @database_sync_to_async
    def stored():
        event = AuditEvent.objects.get(session=session, kind="alert_acknowledged")
        action = ClinicianAction.objects.get(session=session)
        return event, action, EscalationAlert.objects.get(pk=alert.pk)

    event, action, alert = await stored()
    assert event.actor == "clinician:nurse_ann" and event.payload["note"] == "Calling back"
    assert action.kind == "acknowledge" and action.clinician_id == user.pk and action.at is not None
    assert alert.status == "acknowledged" and alert.acknowledged_by_id == user.pk and alert.acknowledged_at
    await communicator.disconnect()


async def test_take_over_stops_the_agent_and_tells_the_patient(voice_runtime):
    """With the call's real VoiceSession: the reply in flight is cut off, the notice is spoken
    (Piper audio), the agent answers nothing more, and both replies are stored with what the
    patient's page reported it played."""
    user = await database_sync_to_async(make_clinician)("dr_bo")
    session = await database_sync_to_async(new_session)()
    call = await LiveCall.open(
        str(session.pk), PatientContext(subject="self", age_band="18_to_64", pregnant=None)
    )
    patient = PatientSide()
    call.attach(patient.send_json, patient.send_bytes)
    question = "How long has it hurt, and does it spread anywhere?"
    reply_id = await call.voice.say(question, kind="question", allow_interruptions=True)

    client = Client()
    await database_sync_to_async(client.force_login)(user)
    response = await database_sync_to_async(client.post)(
        f"/dashboard/sessions/{session.pk}/take-over", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json()["session"]["taken_over_by"] == "dr_bo"

    deadline = time.monotonic() + 15
    while {"type": "interrupt", "reply_id": reply_id} not in patient.json:
        assert time.monotonic() < deadline, f"the reply in flight was not stopped; got {patient.json}"
        await asyncio.sleep(0.02)
    await call.playback_report(reply_id, 400.0)  # what the page played when it stopped

    async def told():
        return any(m.get("type") == "agent_text" and m.get("text") == TAKE_OVER_TEXT for m in patient.json)

    while not await told():
        assert time.monotonic() < deadline, f"patient was not told; got {patient.json}"
        await asyncio.sleep(0.02)
    types = [m["type"] for m in patient.json]
    assert {"type": "interrupt", "reply_id": reply_id} in patient.json, "the reply in flight is stopped"
    assert "clinician_joining" in types
    assert types.index("interrupt") < types.index("clinician_joining"), "the stop comes first"
    notice = next(m for m in patient.json if m["type"] == "agent_text" and m["text"] == TAKE_OVER_TEXT)[
        "reply_id"
    ]

    def sent_ms(rid):
        return (
            sum(len(f) - 4 for f in patient.audio if struct.unpack("<I", f[:4])[0] == rid)
            / 2
            / (call.voice.config.output_sample_rate / 1000)
        )

    # The page reports it played the notice; the agent answers nothing more meanwhile.
    cut = sent_ms(reply_id)
    assert cut > 400 and sent_ms(notice) > 1000, "the notice is spoken (Piper audio)"
    await call.playback_report(notice, sent_ms(notice))
    deadline = time.monotonic() + 10
    while sum(m["type"] == "agent_reply_end" for m in patient.json) < 2:
        assert time.monotonic() < deadline, f"replies not closed; got {patient.json}"
        await asyncio.sleep(0.02)
    assert sent_ms(reply_id) == cut, "nothing more of the cut-off reply reaches the patient"
    assert not call.voice.agent_replies
    await call.drain()
    held = await database_sync_to_async(TriageSession.objects.get)(pk=session.pk)
    assert held.status == "clinician" and held.taken_over_by_id == user.pk
    second = await database_sync_to_async(client.post)(
        f"/dashboard/sessions/{session.pk}/take-over", HTTP_ACCEPT="application/json"
    )
    assert second.status_code == 409
    await call.end("test_done")

    @database_sync_to_async
    def stored():
        return (
            AuditEvent.objects.get(session=session, kind="clinician_took_over"),
            list(Turn.objects.filter(session=session).order_by("index")),
            list(AuditEvent.objects.filter(session=session, kind="barge_in")),
        )

    event, turns, barge_ins = await stored()
    assert event.actor == "clinician:dr_bo" and event.payload["spoken"] == TAKE_OVER_TEXT
    assert [(t.interrupted, t.reply_source, t.played_ms) for t in turns] == [
        (True, "script", 400.0),
        (False, "script", pytest.approx(sent_ms(notice), abs=0.1)),
    ]
    assert question.startswith(turns[0].text) and turns[0].text != question, "only the words played"
    assert turns[1].text == TAKE_OVER_TEXT
    assert barge_ins == [], "a take-over is no barge-in"


def test_override_needs_a_reason_and_outranks_later_rules():
    user = make_clinician("nurse_cy")
    session = new_session(urgency_level=4)
    client = Client()
    client.force_login(user)
    url = f"/dashboard/sessions/{session.pk}/urgency"
    assert client.post(url, {"level": 2}, HTTP_ACCEPT="application/json").status_code == 400
    response = client.post(url, {"level": 2, "reason": "Sounds septic"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json()["session"]["urgency_level"] == 2
    services.record_assessment(session.pk, ev.AssessmentUpdated(3, 5, "self_care", False, (), False, 1.0, {}))
    session.refresh_from_db()
    assert session.urgency_level == 2 and session.urgency_overridden and session.rules_urgency_level == 5
    event = AuditEvent.objects.get(session=session, kind="urgency_overridden")
    assert event.actor == "clinician:nurse_cy" and event.payload == {
        "from": 4, "to": 2, "reason": "Sounds septic", "by": "nurse_cy"
    }  # fmt: skip
    ignored = AuditEvent.objects.filter(session=session, kind="urgency_changed").last()
    assert ignored.payload["applied"] is False and ignored.payload["to"] == 5
    action = ClinicianAction.objects.get(session=session)
    assert action.kind == "override_urgency" and action.reason == "Sounds septic"


def test_review_shows_the_whole_timeline_with_latency():
    user = make_clinician()
    session = new_session()
    now = timezone.now()
    sid = session.pk
    services.record_state_change(sid, ev.StateChanged("idle", "listening", "audio", 1, 0.0), now)
    services.record_patient_turn(
        sid, ev.FinalTranscript(1, "My chest feels crushed", -0.2, 0.0, 0, 1, 1), now, now
    )
    services.record_assessment(
        sid, ev.AssessmentUpdated(1, 1, "call_emergency_services", True, REASONS, True, 1, {})
    )
    services.record_escalation(sid, escalation(1.0, turn_id=1))
    services.record_agent_turn(sid, ev.AgentReplyFinished(1, 1, "Call emergency services now.", False, False, 2),
                               "script", 2500.0, now, now)  # fmt: skip
    services.record_turn_metrics(
        sid,
        ev.TurnMetrics(1, {"asr_final": 310.0, "response_onset": 640.0}, 640.0, 900.0, 0.8, False, False,
                       ("response_onset",), 3.0),
        {"response_onset": 600.0, "asr_final": 400.0},
    )  # fmt: skip
    alert = EscalationAlert.objects.get(session=session)
    client = Client()
    client.force_login(user)
    client.post(f"/dashboard/alerts/{alert.pk}/acknowledge", HTTP_ACCEPT="application/json")
    page = client.get(f"/review/{sid}/").content.decode()
    for expected in [
        "My chest feels crushed",  # patient turn
        "Call emergency services now.",  # agent turn
        "idle → listening",  # state transition
        "cardiac_chest_pain",  # rule
        "“crushing chest pain”",  # the words that fired it
        "“can&#x27;t breathe”",
        "Escalation: 1 - Emergency services now",
        f"Alert acknowledged by {user.username}",
        "response_onset",  # latency breakdown
        "640 ms / 600",
        "over budget",
        "hash chain verified",
        "Not stored (TRIAGE_STORE_AUDIO is off)",
        # However far Celery has got, the audit trail has both turns.
        f"Turns stored</dt><dd>{Turn.objects.filter(session=session).count()} of 2",
    ]:
        assert expected in page, expected
    listing = client.get("/review/?escalated=on").content.decode()
    assert str(sid)[:8] in listing


def test_telemetry_data_feeds_the_charts(settings):
    settings.TRIAGE = {**settings.TRIAGE, "TELEMETRY_BUCKET_SECONDS": 300}
    user = make_clinician()
    session = new_session()
    now = timezone.now()
    for i, ms in enumerate([400.0, 500.0, 600.0, 1400.0], start=1):
        LatencySample.objects.create(session=session, turn_id=i, stage="response_onset", duration_ms=ms,
                                     budget_ms=800, budget_missed=ms > 800, recorded_at=now)  # fmt: skip
    LatencySample.objects.create(
        session=session, turn_id=1, stage="barge_in_stop", duration_ms=120, budget_ms=200
    )
    LatencySample.objects.create(session=session, turn_id=2, stage="barge_in_stop", duration_ms=320, budget_ms=200,
                                 budget_missed=True)  # fmt: skip
    for i, source in enumerate(["llm", "llm", "llm", "fallback"], start=1):
        Turn.objects.create(session=session, index=i, speaker="agent", text="x", reply_source=source, ended_at=now,
                            idempotency_key=f"k{i}")  # fmt: skip
    new_session(status="abandoned", ended_at=now)
    new_session(status="ended", ended_at=now)
    client = Client()
    client.force_login(user)
    data = client.get("/dashboard/telemetry/data?hours=1").json()
    s = data["series"]
    assert len(s["labels"]) == 1
    assert s["response_onset_p50"] == [550.0] and s["response_onset_p95"][0] > 1200
    assert s["interruption_success_pct"] == [50.0] and s["llm_fallback_pct"] == [25.0]
    assert s["dropoffs"] == [1] and s["sessions_ended"] == [2]
    stages = {row["stage"]: row for row in data["stages"]}
    assert stages["response_onset"]["n"] == 4 and stages["response_onset"]["budget_misses"] == 1
    page = client.get("/dashboard/telemetry/").content.decode()
    assert "vendor/chart.umd.min.js" in page and "telemetry.js" in page


def test_beat_closes_abandoned_sessions_as_dropoffs(settings):
    settings.TRIAGE = {**settings.TRIAGE, "ABANDON_AFTER_SECONDS": 600}
    old = timezone.now() - dt.timedelta(minutes=30)
    stale = new_session(last_activity_at=old)
    stale_escalated = new_session(last_activity_at=old, status="escalated")
    fresh = new_session()
    assert housekeeping.close_abandoned() == 2
    assert housekeeping.close_abandoned() == 0
    for s in (stale, stale_escalated):
        s.refresh_from_db()
        assert s.status == "abandoned" and s.end_reason == "abandoned" and s.ended_at is not None
        assert AuditEvent.objects.filter(session=s, kind="session_abandoned").exists()
    fresh.refresh_from_db()
    assert fresh.status == "active"


def test_admin_latency_samples_filter_by_stage_date_budget_and_duration():
    from tests.triage.clinician_support import make_admin

    session = new_session()
    now = timezone.now()
    rows = [("response_onset", 650.0, False), ("response_onset", 1450.0, True), ("asr_final", 300.0, False)]
    for i, (stage, ms, missed) in enumerate(rows):
        LatencySample.objects.create(session=session, turn_id=i, stage=stage, duration_ms=ms, budget_missed=missed,
                                     recorded_at=now)  # fmt: skip
    LatencySample.objects.create(session=session, turn_id=9, stage="response_onset", duration_ms=700.0,
                                 recorded_at=now - dt.timedelta(days=40))  # fmt: skip
    client = Client()
    client.force_login(make_admin())
    url = "/admin/triage/latencysample/"

    def count(query: str) -> int:
        response = client.get(url + query)
        assert response.status_code == 200
        return response.context["cl"].result_count

    assert count("") == 4
    assert count("?stage=response_onset") == 3
    assert count("?stage=response_onset&budget_missed__exact=1") == 1
    assert count("?duration=500-1000") == 2
    assert count("?" + urlencode({"recorded_at__gte": (now - dt.timedelta(days=7)).isoformat()})) == 3
