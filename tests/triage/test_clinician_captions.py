"""Captions of the clinician's words on the patient's page (issue 13 part 2): real sockets (the
patient's, the clinician's talk socket, a colleague's listen socket) on the real ASGI app, the
real voice pipeline, Piper speech as the clinician's microphone, the call's Whisper transcribing
it, PostgreSQL and Redis."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from tests.speech import frames, silence, speech_pcm16k
from tests.triage.clinician_support import ORIGIN, make_clinician, ws_headers
from tests.triage.test_dashboard_alert_spoken import Inbox
from triage import services
from triage.dashboard.control import TAKE_OVER_TEXT
from triage.models import Turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.models, pytest.mark.timeout(600)]

CLINICIAN_SAYS = "Please go to the emergency department now."


async def clinician_socket(session_id: str, user, kind: str):
    headers = await database_sync_to_async(ws_headers)(user)
    communicator = WebsocketCommunicator(
        application, f"/ws/clinician/calls/{session_id}/{kind}/", headers=headers
    )
    assert (await communicator.connect(timeout=30))[0]
    return communicator


async def next_json(communicator, predicate, timeout: float = 120.0) -> dict:
    while True:
        message = await communicator.receive_output(timeout=timeout)
        assert message["type"] != "websocket.close", message
        if message.get("text") is not None and predicate(data := json.loads(message["text"])):
            return data


async def test_the_patients_page_gets_the_clinicians_words_as_captions(voice_runtime):
    nurse = await database_sync_to_async(make_clinician)("nurse_cap")
    colleague = await database_sync_to_async(make_clinician)("dr_cap")
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    patient = WebsocketCommunicator(application, f"/ws/patient/{token}/", headers=[ORIGIN])
    assert (await patient.connect(timeout=300))[0]
    inbox = Inbox(patient)
    await inbox.until(lambda e: e["type"] == "ready", timeout=300)

    @database_sync_to_async
    def take_over():
        client = Client()
        client.force_login(nurse)
        return client.post(f"/dashboard/sessions/{sid}/take-over", HTTP_ACCEPT="application/json")

    assert (await take_over()).status_code == 200
    await inbox.until(lambda e: e["type"] == "agent_text" and e["text"] == TAKE_OVER_TEXT, timeout=60)
    talk = await clinician_socket(sid, nurse, "talk")
    ready = await next_json(talk, lambda m: m["type"] in ("talk_ready", "error"), timeout=60)
    assert ready["type"] == "talk_ready" and ready["transcribed"], ready
    listening = await clinician_socket(sid, colleague, "listen")
    assert (await next_json(listening, lambda m: True, timeout=30))["type"] == "listen_ready"

    for frame in frames(speech_pcm16k(CLINICIAN_SAYS) + silence(900)):
        await talk.send_to(bytes_data=frame)

    caption = await inbox.until(lambda e: e["type"] == "clinician_transcript", timeout=120)
    assert "emergency department" in caption["text"].lower(), caption
    assert caption == {"type": "clinician_transcript", "text": caption["text"]}, "no clinician name"
    # The patient's page hears the voice first: the caption follows the audio of the same words.
    start = next(e for e in inbox.events if e["type"] == "agent_reply_start" and e["kind"] == "clinician")
    assert inbox.audio.get(start["reply_id"], 0) > 0
    assert inbox.events.index(start) < inbox.events.index(caption)
    # A colleague listening in sees the same words and who said them.
    heard = await next_json(
        listening,
        lambda m: m["type"] == "call_event" and m["event"]["type"] == "clinician_transcript",
    )
    assert heard["event"] == caption | {"by": "nurse_cap"}

    await listening.disconnect()
    await talk.disconnect()
    await patient.send_to(text_data=json.dumps({"type": "end"}))
    await inbox.until(lambda e: e["type"] == "ended", timeout=60)
    await patient.disconnect()

    @database_sync_to_async
    def stored():
        services.flush_pending_turns(sid)
        return list(Turn.objects.filter(session_id=sid, speaker="clinician").values_list("text", flat=True))

    assert [t.lower() for t in await stored()] == [caption["text"].lower()], "the caption is the stored turn"
