"""Listen in (issue 13 part 1): ws/clinician/calls/<id>/listen/ against a real LiveCall, real
PostgreSQL and Redis. Events enter the call through the callback the voice pipeline calls
(``_on_event``) and patient audio through ``feed_audio``, the production paths; no voice models
are loaded (the call has no VoiceSession, so it is put in the process registry by hand, which
``LiveCall.open`` does after loading them)."""

import json
import struct
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from clinical_rules import PatientContext
from config.asgi import application
from tests.triage.clinician_support import make_clinician, make_plain_user, ws_headers
from triage import audit, listen, live, services
from triage.live import LiveCall
from triage.models import AuditEvent, TriageSession
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class PatientSide:
    def __init__(self):
        self.json: list[dict] = []
        self.audio: list[bytes] = []

    async def send_json(self, message):
        self.json.append(message)

    async def send_bytes(self, data):
        self.audio.append(data)


def new_session(**fields):
    session, token = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    if fields:
        TriageSession.objects.filter(pk=session.pk).update(**fields)
    return session, token


async def live_call(session_id: str, *, voice: bool = False) -> tuple[LiveCall, PatientSide]:
    """``voice``: the call gets its real VoiceSession (LiveCall.open; load the ``voice_runtime``
    fixture first), not started, so it says nothing until asked (no greeting)."""
    context = PatientContext(subject="self", age_band="18_to_64", pregnant=None)
    if voice:
        call = await LiveCall.open(session_id, context)
    else:
        call = LiveCall(session_id, context)
        call.start_recording()
        live._calls[session_id] = call  # what LiveCall.open does once the models are loaded
    patient = PatientSide()
    call.attach(patient.send_json, patient.send_bytes)
    return call, patient


async def listen_socket(session_id: str, user=None, path_suffix: str = "", extra=None):
    headers = await database_sync_to_async(ws_headers)(user, extra)
    communicator = WebsocketCommunicator(
        application, f"/ws/clinician/calls/{session_id}/listen/{path_suffix}", headers=headers
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected  # accepted first, so the page can read why it is refused
    return communicator


async def refused_with(communicator, code: int, error: str) -> None:
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "error" and message["code"] == error
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": code}
    await communicator.disconnect()


async def test_clinician_hears_both_sides_sees_captions_and_the_patient_hears_nothing():
    user = await database_sync_to_async(make_clinician)("nurse_lis")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, patient = await live_call(sid)
    communicator = await listen_socket(sid, user)
    ready = await communicator.receive_json_from(timeout=10)
    assert ready["type"] == "listen_ready" and ready["patient_rate"] == 16000
    assert listen.count(sid) == 1

    mic = struct.pack("<320h", *range(320))
    await call.feed_audio(mic)
    frame = await communicator.receive_from(timeout=5)
    assert listen.HEADER.unpack(frame[:4]) == (listen.PATIENT, 16000) and frame[4:] == mic

    t = time.monotonic()
    speech = struct.pack("<200h", *([1000, -1000] * 100))
    await call._on_event(ev.AgentAudio(7, 0, speech, 22050, t))
    frame = await communicator.receive_from(timeout=5)
    assert listen.HEADER.unpack(frame[:4]) == (listen.AGENT, 22050) and frame[4:] == speech
    assert len(patient.audio) == 1, "the patient got the agent's audio, once"

    await call._on_event(ev.PartialTranscript(2, "my chest hurts", "my chest", -0.2, 0.0, t))
    caption = await communicator.receive_json_from(timeout=5)
    assert caption["type"] == "call_event" and caption["event"]["type"] == "transcript"
    assert caption["event"]["text"] == "my chest hurts" and caption["event"]["final"] is False
    await call._on_event(ev.AgentText(7, 0, "When did it start?", "llm", t))
    caption = await communicator.receive_json_from(timeout=5)
    assert caption["event"]["type"] == "agent_text" and caption["event"]["text"] == "When did it start?"

    # Whatever the listener sends, the patient hears and sees nothing of it.
    before = (len(patient.json), len(patient.audio))
    await communicator.send_to(bytes_data=b"\x00\x01" * 320)
    await communicator.send_to(text_data=json.dumps({"type": "say", "text": "hello"}))
    await communicator.disconnect()
    assert (len(patient.json), len(patient.audio)) == before
    assert listen.count(sid) == 0
    await call.end("test_done")

    @database_sync_to_async
    def stored():
        events = list(AuditEvent.objects.filter(session_id=sid, kind__startswith="clinician_listen"))
        return events, audit.verify_chain(sid)

    events, broken = await stored()
    assert [e.kind for e in events] == ["clinician_listen_started", "clinician_listen_ended"]
    assert all(e.actor == "clinician:nurse_lis" for e in events)
    assert events[1].payload["by"] == "nurse_lis" and events[1].payload["seconds"] >= 0
    assert events[1].created_at >= events[0].created_at
    assert broken is None


async def test_the_listener_is_told_and_closed_when_the_call_ends():
    user = await database_sync_to_async(make_clinician)("nurse_end")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, _ = await live_call(sid)
    communicator = await listen_socket(sid, user)
    assert (await communicator.receive_json_from(timeout=10))["type"] == "listen_ready"
    await call.end("patient_ended")
    assert (await communicator.receive_json_from(timeout=10))["type"] == "call_ended"
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 1000}
    await communicator.disconnect()
    assert listen.count(sid) == 0


async def test_no_login_a_patient_token_or_a_non_clinician_never_opens_it():
    session, token = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, patient = await live_call(sid)
    visitor = await database_sync_to_async(make_plain_user)()
    # The patient's own token, however it is presented, is no clinician credential.
    attempts = [
        await listen_socket(sid),
        await listen_socket(sid, path_suffix=f"?token={token}"),
        await listen_socket(sid, extra=[(b"authorization", f"Bearer {token}".encode())]),
        await listen_socket(sid, extra=[(b"cookie", f"token={token}".encode())]),
        await listen_socket(sid, visitor),
    ]
    for communicator in attempts:
        await refused_with(communicator, 4403, "forbidden")
    assert listen.count(sid) == 0
    await call.feed_audio(b"\x00\x00" * 320)  # nobody is tapped in
    await call.end("test_done")
    assert not await database_sync_to_async(
        AuditEvent.objects.filter(session_id=sid, kind="clinician_listen_started").exists
    )()


async def test_a_call_that_is_not_live_is_refused_clearly():
    user = await database_sync_to_async(make_clinician)("nurse_far")
    ended, _ = await database_sync_to_async(new_session)(status="ended")
    await refused_with(await listen_socket(str(ended.pk), user), 4404, "not_live")
    # Open, but no node holds a LiveCall for it (none answers the relay's request).
    nowhere, _ = await database_sync_to_async(new_session)()
    await refused_with(await listen_socket(str(nowhere.pk), user), 4404, "not_live")


async def test_losing_clinician_access_closes_the_listen_socket_at_once():
    from django.contrib.auth.models import Group

    from triage.management.commands.ensure_demo_clinician import CLINICIAN_GROUP

    user = await database_sync_to_async(make_clinician)("nurse_gone")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, _ = await live_call(sid)
    communicator = await listen_socket(sid, user)
    assert (await communicator.receive_json_from(timeout=10))["type"] == "listen_ready"
    await database_sync_to_async(lambda: user.groups.remove(Group.objects.get(name=CLINICIAN_GROUP)))()
    error = await communicator.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "access_revoked"
    assert error["reason"] == "permission_removed"
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 4401}
    assert listen.count(sid) == 0, "nothing more is copied to a login that lost access"
    await communicator.disconnect()
    await call.end("test_done")
    assert await database_sync_to_async(
        AuditEvent.objects.filter(session_id=sid, kind="clinician_listen_ended").exists
    )()
