"""One spoken turn end to end through the real consumer, real models and the real database:
Piper speech in as PCM frames → VAD → tiny.en → clinical rules → Piper audio back."""

import asyncio
import json
import struct

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.speech import frames, silence, speech_pcm16k
from triage import services
from triage.audit import verify_chain
from triage.models import AuditEvent, LatencySample, StateTransition, Turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.models]

UTTERANCE = "I have had a headache since this morning."


async def connect(token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, f"/ws/patient/{token}/", headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, _ = await communicator.connect(timeout=120)
    assert connected
    return communicator


class Collector:
    """Reads every server message in order, keeping JSON events and binary audio apart."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.events: list[dict] = []
        self.audio: dict[int, int] = {}

    async def until(self, predicate, timeout: float):
        async def loop():
            while True:
                message = await self.communicator.receive_output(timeout=timeout)
                if message["type"] == "websocket.close":
                    raise AssertionError(f"socket closed: {message}; events so far: {self.events}")
                if message.get("bytes") is not None:
                    (reply_id,) = struct.unpack("<I", message["bytes"][:4])
                    self.audio[reply_id] = self.audio.get(reply_id, 0) + len(message["bytes"]) - 4
                    event = {"type": "_audio", "reply_id": reply_id}
                else:
                    event = json.loads(message["text"])
                    self.events.append(event)
                if predicate(event):
                    return event

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            seen = [
                (e["type"], e.get("state") or e.get("reply_id") or e.get("text", ""))
                for e in self.events[-40:]
            ]
            raise AssertionError(f"timed out after {timeout} s; last events: {seen}") from None


async def test_one_spoken_turn_end_to_end():
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    communicator = await connect(token)
    inbox = Collector(communicator)
    ready = await inbox.until(lambda e: e["type"] == "ready", timeout=120)
    assert ready["protocol"] == 1 and ready["input"]["sample_rate"] == 16000
    # The greeting is spoken first; wait for its audio to finish.
    greeting = await inbox.until(lambda e: e["type"] == "agent_reply_start", timeout=60)
    await inbox.until(lambda e: e["type"] == "agent_reply_end", timeout=60)
    assert inbox.audio.get(greeting["reply_id"], 0) > 16000  # > 0.5 s of greeting audio
    await communicator.send_to(
        text_data=json.dumps({"type": "playback", "reply_id": greeting["reply_id"], "played_ms": 3000})
    )

    # Stream the patient's utterance in real time (a microphone), then silence.
    for frame in frames(speech_pcm16k(UTTERANCE) + silence(1500)):
        await communicator.send_to(bytes_data=frame)
        await asyncio.sleep(0.02)

    # The reply may start before the final transcript arrives (speculation at the first silence).
    reply_end = await inbox.until(
        lambda e: e["type"] == "agent_reply_end" and e["reply_id"] != greeting["reply_id"], timeout=90
    )
    reply = {"reply_id": reply_end["reply_id"]}
    finals = [e for e in inbox.events if e["type"] == "transcript" and e["final"]]
    assert finals, "a final transcript was sent"
    final = finals[-1]
    assert "headache" in final["text"].lower() and "morning" in final["text"].lower()
    assert inbox.audio.get(reply["reply_id"], 0) > 8000, "agent audio for the reply came back"
    assert any(e["type"] == "agent_text" and e["reply_id"] == reply["reply_id"] for e in inbox.events)
    assert any(e["type"] == "state" and e["state"] == "thinking" for e in inbox.events)

    await communicator.send_to(text_data=json.dumps({"type": "end"}))
    await inbox.until(lambda e: e["type"] == "ended", timeout=30)
    await communicator.disconnect()

    @database_sync_to_async
    def stored():
        turns = list(Turn.objects.filter(session=session).order_by("index"))
        transitions = list(StateTransition.objects.filter(session=session).values_list("to_state", flat=True))
        samples = set(LatencySample.objects.filter(session=session).values_list("stage", flat=True))
        kinds = set(AuditEvent.objects.filter(session=session).values_list("kind", flat=True))
        return turns, transitions, samples, kinds, verify_chain(session.pk)

    turns, transitions, samples, kinds, broken = await stored()
    patient_turns = [t for t in turns if t.speaker == "patient"]
    assert len(patient_turns) == 1 and "headache" in patient_turns[0].text.lower()
    assert patient_turns[0].asr_avg_logprob is not None
    assert [t.speaker for t in turns].count("agent") >= 2  # greeting + reply
    assert {"listening", "user_speaking", "thinking", "agent_speaking", "ended"} <= set(transitions)
    assert "response_onset" in samples
    assert {
        "session_created",
        "socket_connected",
        "patient_turn",
        "agent_turn",
        "state_transition",
        "turn_metrics",
        "session_ended",
    } <= kinds
    assert broken is None
