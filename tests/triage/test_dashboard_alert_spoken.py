"""Red-flag words spoken into a real patient socket (real VAD, ASR, rules, pipeline) reach a
connected dashboard socket while the patient is still talking; the clinician then takes the
call over and the patient hears the hand-over text.

The bar is 1 s from the end of the red-flag words to the alert on the dashboard socket. This
test asserts strictly our share (words recognised → dashboard socket < 1 s) and the whole path
loosely, since Whisper's partial cadence depends on how busy the shared 2-core machine is;
``python -m evals.triage.bench_alert --spoken`` measures the whole path.
"""

import asyncio
import json
import struct
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from evals.triage.bench_alert import LEAD_IN, RED_FLAG, TAIL
from tests.speech import frames, silence, speech_pcm16k
from tests.triage.clinician_support import ORIGIN, make_clinician, receive_until, ws_headers
from triage import services
from triage.dashboard.control import TAKE_OVER_TEXT
from triage.models import AuditEvent, EscalationAlert

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.models, pytest.mark.timeout(600)]

# Loose on purpose: on a busy 2-core box Whisper's partials lag by seconds (the bench reports the
# real figure); an alert that only came at the end of the call would still fail this.
LOOSE_SPOKEN_S = 20.0


class Inbox:
    """Reads the patient socket in the background: JSON events and audio per reply id."""

    def __init__(self, communicator):
        self.communicator = communicator
        self.events: list[dict] = []
        self.arrived: list[float] = []
        self.audio: dict[int, int] = {}
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            message = await self.communicator.receive_output(timeout=600)
            if message["type"] == "websocket.close":
                return
            if message.get("bytes") is not None:
                (reply_id,) = struct.unpack("<I", message["bytes"][:4])
                self.audio[reply_id] = self.audio.get(reply_id, 0) + len(message["bytes"]) - 4
            else:
                self.events.append(json.loads(message["text"]))
                self.arrived.append(time.monotonic())

    async def until(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            assert time.monotonic() < deadline, f"timed out; events: {self.events[-10:]}"
            await asyncio.sleep(0.02)


async def test_spoken_red_flag_alerts_the_dashboard_while_the_patient_talks_then_take_over():
    clinician = await database_sync_to_async(make_clinician)("nurse_dee")
    dashboard = WebsocketCommunicator(
        application, "/ws/dashboard/", headers=await database_sync_to_async(ws_headers)(clinician)
    )
    assert (await dashboard.connect(timeout=30))[0]
    await dashboard.receive_json_from(timeout=30)
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    patient = WebsocketCommunicator(application, f"/ws/patient/{token}/", headers=[ORIGIN])
    assert (await patient.connect(timeout=300))[0]
    inbox = Inbox(patient)
    greeting = await inbox.until(lambda e: e["type"] == "agent_reply_start", timeout=300)
    await inbox.until(
        lambda e: e["type"] == "agent_reply_end" and e["reply_id"] == greeting["reply_id"], timeout=120
    )
    await patient.send_to(
        text_data=json.dumps({"type": "playback", "reply_id": greeting["reply_id"], "played_ms": 5000})
    )

    lead, flag, tail = speech_pcm16k(LEAD_IN), speech_pcm16k(RED_FLAG), speech_pcm16k(TAIL)
    gap = silence(150)
    audio = frames(lead + gap + flag + gap + tail + silence(1500))
    flag_end = (len(lead) + len(gap) + len(flag)) // 640
    tail_end = (len(lead) + 2 * len(gap) + len(flag) + len(tail)) // 640

    async def watch():
        message = await receive_until(dashboard, lambda m: m["type"] == "alert", timeout=120)
        return message, time.monotonic()

    alert_task = asyncio.ensure_future(watch())
    start = time.monotonic()
    flag_sent = tail_sent = None
    for i, frame in enumerate(audio):  # a microphone: 20 ms frames in real time
        await asyncio.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
        await patient.send_to(bytes_data=frame)
        if i == flag_end:
            flag_sent = time.monotonic()
        if i == tail_end:
            tail_sent = time.monotonic()
    alert, received = await alert_task
    assert alert["session_id"] == str(session.pk) and alert["level"] == 1
    assert any("droop" in " ".join(r["words"]) for r in alert["reasons"]), alert[
        "reasons"
    ]  # a partial may say "droop"
    heard = [(t, e) for e, t in zip(inbox.events, inbox.arrived, strict=True) if e["type"] == "transcript"]
    # The transcript that first carried the red-flag words reached the patient's page straight
    # from the pipeline event that raised the alert: the same moment, seen from the call.
    recognised = next(t for t, e in heard if "drooping" in e["text"].lower())
    spoken_s, recognised_s = received - flag_sent, received - recognised
    print(
        f"\nred-flag words spoken -> dashboard alert: {spoken_s * 1000:.0f} ms "
        f"(recognised -> dashboard: {recognised_s * 1000:.0f} ms; on a partial: {alert['on_partial']}; "
        f"patient still talking: {received < tail_sent}); transcripts (s): "
        f"{[(round(t - start, 2), e['final'], e['text']) for t, e in heard]}"
    )
    # Our share of the bar, strictly: recognition to the dashboard socket.
    assert recognised_s < 1.0, (
        f"alert reached the dashboard {recognised_s:.2f}s after the words were recognised"
    )
    # The whole path, loosely: speech recognition speed depends on the machine (bench measures it).
    assert spoken_s < LOOSE_SPOKEN_S, f"alert {spoken_s:.2f}s after the red-flag words (bar 1 s)"

    # Take over from the dashboard: the agent stops and tells the patient a clinician is joining.
    @database_sync_to_async
    def take_over():
        client = Client()
        client.force_login(clinician)
        return client.post(f"/dashboard/sessions/{session.pk}/take-over", HTTP_ACCEPT="application/json")

    assert (await take_over()).status_code == 200
    said = await inbox.until(lambda e: e["type"] == "agent_text" and e["text"] == TAKE_OVER_TEXT, timeout=60)
    started = [
        e for e in inbox.events if e["type"] == "agent_reply_start" and e["reply_id"] == said["reply_id"]
    ]
    assert [e["kind"] for e in started] == ["clinician_joining"], "spoken by the session, as the notice"
    await inbox.until(
        lambda e: e["type"] == "agent_reply_end" and e["reply_id"] == said["reply_id"], timeout=60
    )
    assert inbox.audio.get(said["reply_id"], 0) > 16000, "the hand-over text was spoken (Piper audio)"

    await patient.send_to(text_data=json.dumps({"type": "end"}))
    await inbox.until(lambda e: e["type"] == "ended", timeout=60)
    await patient.disconnect()
    await dashboard.disconnect()

    @database_sync_to_async
    def stored():
        return (
            EscalationAlert.objects.filter(session=session).count(),
            set(AuditEvent.objects.filter(session=session).values_list("kind", flat=True)),
        )

    alerts, kinds = await stored()
    assert alerts == 1
    assert {
        "escalation_raised",
        "clinician_took_over",
        "patient_turn",
        "agent_turn",
        "session_ended",
    } <= kinds
