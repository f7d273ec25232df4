"""Listen in and talk when the clinician's socket is on another node than the call (issue 13).

The call's LiveCall runs here but is taken out of this process's registry (``live._calls``),
which is all that makes a call local to a socket: the listen and talk sockets then reach it the
way they reach a call on another daphne process, over the real Redis channel layer
(triage/call_link.py), and the call serves them from its own group as its node would. Real
PostgreSQL, the real ASGI app; the talk tests have the real voice pipeline and Whisper.
"""

import asyncio
import inspect
import math
import struct
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests.speech import frames, silence, speech_pcm16k
from tests.triage.clinician_support import make_clinician
from tests.triage.test_handoff_voice import open_talk, post, said, take_over, until
from tests.triage.test_listen_in import listen_socket, live_call, new_session
from triage import audit, call_link, handoff, listen, live
from triage.live import audio_frame
from triage.models import AuditEvent, TriageSession
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture(autouse=True)
def _redis_layer(request):
    if "RedisChannelLayer" not in type(get_channel_layer()).__name__:
        pytest.fail("the cross-node relay is tested on the real Redis channel layer (set REDIS_URL)")
    if inspect.iscoroutinefunction(request.function) and "talk" in request.function.__name__:
        request.getfixturevalue("voice_runtime")


async def on_another_node(session_id: str, *, voice: bool = False):
    """A live call that this process's sockets can only reach over the channel layer."""
    call, patient = await live_call(session_id, voice=voice)
    live._calls.pop(session_id)
    await asyncio.wait_for(call.reachable.wait(), 10)
    return call, patient


def relaying(call) -> bool:
    return any("serve" in repr(t.get_coro()) for t in call._tasks)


async def end(call) -> None:
    """End the call once its node has finished every relay (nothing left running in this loop)."""
    await until(lambda: not relaying(call), "the call's node to finish its relays", timeout=30)
    await call.end("test_done")


async def stored_kinds(sid: str):
    @database_sync_to_async
    def read():
        rows = list(AuditEvent.objects.filter(session_id=sid).order_by("seq").values_list("kind", "payload"))
        return rows, audit.verify_chain(sid)

    return await read()


async def test_listen_in_from_another_node_hears_both_sides_and_sees_captions():
    user = await database_sync_to_async(make_clinician)("nurse_far")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, patient = await on_another_node(sid)
    communicator = await listen_socket(sid, user)
    ready = await communicator.receive_json_from(timeout=10)
    assert ready["type"] == "listen_ready" and ready["patient_rate"] == 16000
    assert listen.count(sid) == 1, "the call's node taps the call for the relay"

    mic = struct.pack("<320h", *range(320))
    await call.feed_audio(mic)
    frame = await communicator.receive_from(timeout=5)
    assert listen.HEADER.unpack(frame[:4]) == (listen.PATIENT, 16000) and frame[4:] == mic
    t = time.monotonic()
    speech = struct.pack("<200h", *([1000, -1000] * 100))
    await call._on_event(ev.AgentAudio(7, 0, speech, 22050, t))
    frame = await communicator.receive_from(timeout=5)
    assert listen.HEADER.unpack(frame[:4]) == (listen.AGENT, 22050) and frame[4:] == speech
    await call._on_event(ev.PartialTranscript(2, "my chest hurts", "my chest", -0.2, 0.0, t))
    caption = await communicator.receive_json_from(timeout=5)
    assert caption["type"] == "call_event" and caption["event"]["text"] == "my chest hurts"

    # Whatever the listener sends, the patient hears and sees nothing of it.
    before = (len(patient.json), len(patient.audio))
    await communicator.send_to(bytes_data=b"\x00\x01" * 320)
    await communicator.disconnect(timeout=30)
    await until(lambda: listen.count(sid) == 0, "the call's node to stop the tap")
    assert (len(patient.json), len(patient.audio)) == before
    await end(call)

    rows, broken = await stored_kinds(sid)
    listened = [(k, p) for k, p in rows if k.startswith("clinician_listen")]
    assert [k for k, _ in listened] == ["clinician_listen_started", "clinician_listen_ended"]
    assert listened[1][1]["by"] == "nurse_far" and listened[1][1]["frames_dropped"] == 0
    assert broken is None


async def test_a_listener_on_another_node_is_told_when_the_call_ends():
    user = await database_sync_to_async(make_clinician)("nurse_far_end")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, _ = await on_another_node(sid)
    communicator = await listen_socket(sid, user)
    assert (await communicator.receive_json_from(timeout=10))["type"] == "listen_ready"
    await call.end("patient_ended")
    assert (await communicator.receive_json_from(timeout=10))["type"] == "call_ended"
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 1000}
    await communicator.disconnect(timeout=30)
    await until(lambda: not relaying(call), "the call's node to finish the relay", timeout=30)


async def test_a_relay_whose_socket_node_goes_silent_is_closed_by_the_calls_node(monkeypatch):
    """The socket's node dies (no close, no keep-alives): the call's node stops the tap."""
    monkeypatch.setattr(call_link, "PEER_TIMEOUT_S", 1.0)
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, _ = await on_another_node(sid)
    link = await call_link.RemoteLink(get_channel_layer(), sid).open(
        call_link.LISTEN, "nurse_gone", frozenset()
    )
    assert isinstance(link, call_link.RemoteLink) and listen.count(sid) == 1
    link._stop()  # the node is gone: it reads nothing and says nothing more
    await until(lambda: listen.count(sid) == 0, "the call's node to drop the silent link", timeout=5)
    await end(call)


async def test_a_socket_whose_calls_node_goes_silent_is_closed_for_a_reconnect(monkeypatch):
    """The call's node dies mid-relay (its link task is gone: no frames, no keep-alives): the
    listen socket closes with 1011, which the page reconnects after."""
    monkeypatch.setattr(call_link, "PEER_TIMEOUT_S", 1.0)
    monkeypatch.setattr(call_link, "ALIVE_S", 0.3)
    user = await database_sync_to_async(make_clinician)("nurse_orphan")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, _ = await on_another_node(sid)
    communicator = await listen_socket(sid, user)
    assert (await communicator.receive_json_from(timeout=10))["type"] == "listen_ready"
    serving = [t for t in call._tasks if "serve" in repr(t.get_coro())]  # the call's node's relay
    assert len(serving) == 1
    serving[0].cancel()
    while (message := await communicator.receive_output(timeout=10))["type"] != "websocket.close":
        pass
    assert message == {"type": "websocket.close", "code": 1011}
    await communicator.disconnect(timeout=30)
    await end(call)


async def test_talk_from_another_node_both_hear_each_other_captions_and_hand_back():
    nurse = await database_sync_to_async(make_clinician)("nurse_far_talk")
    colleague = await database_sync_to_async(make_clinician)("dr_far_listen")
    session, _ = await database_sync_to_async(new_session)()
    sid = str(session.pk)
    call, patient = await on_another_node(sid, voice=True)
    await take_over(nurse, sid, patient)
    talk = await open_talk(sid, nurse)
    ready = await talk.receive_json_from(timeout=30)
    assert ready["type"] == "talk_ready" and ready["resumed"] is False and ready["transcribed"], ready
    reply_id = next(m for m in patient.json if m.get("kind") == "clinician")["reply_id"]
    listening = await listen_socket(sid, colleague)
    assert (await listening.receive_json_from(timeout=10))["type"] == "listen_ready"

    # Clinician -> patient, through the relay; a colleague listening in hears it too (source 2).
    voice = struct.pack("<320h", *[int(8000 * math.sin(i / 5)) for i in range(320)])
    await talk.send_to(bytes_data=voice)
    await until(lambda: audio_frame(reply_id, voice) in patient.audio, "the clinician's voice at the patient")
    while not isinstance(heard := await listening.receive_from(timeout=5), bytes):
        pass
    assert listen.HEADER.unpack(heard[:4])[0] == listen.CLINICIAN and heard[4:] == voice
    await listening.disconnect(timeout=30)
    # Patient -> clinician; not their own voice back.
    mic = struct.pack("<320h", *range(0, 640, 2))
    await call.feed_audio(mic)
    sources = []
    while True:
        frame = await talk.receive_from(timeout=5)
        if isinstance(frame, bytes):
            sources.append(listen.HEADER.unpack(frame[:4])[0])
            if sources[-1] == listen.PATIENT:
                break
    assert frame[4:] == mic and listen.CLINICIAN not in sources, sources

    # The clinician's words are transcribed on the call's node: a turn and a caption.
    for piece in frames(speech_pcm16k("Please go to the emergency department now.") + silence(900)):
        await talk.send_to(bytes_data=piece)
    await until(
        lambda: any(m.get("type") == "clinician_transcript" for m in patient.json), "the caption", timeout=60
    )
    caption = next(m for m in patient.json if m.get("type") == "clinician_transcript")
    assert "emergency" in caption["text"].lower()
    assert not call.voice.agent_replies, "the agent is silent while the clinician has the call"

    response = await post(nurse, f"/dashboard/sessions/{sid}/hand-back", note="Back to questions")
    assert response.status_code == 200
    await until(lambda: said(patient, handoff.HAND_BACK_TEXT), "the hand-back notice")
    await talk.disconnect(timeout=30)
    assert call.voice.agent_replies
    await end(call)

    rows, broken = await stored_kinds(sid)
    kinds = [k for k, _ in rows]
    for kind in (
        "clinician_voice_started",
        "clinician_turn",
        "clinician_handed_back",
        "clinician_voice_ended",
    ):
        assert kind in kinds, kinds
    assert "clinician_connection_lost" not in kinds and broken is None
    ended = next(p for k, p in rows if k == "clinician_voice_ended")
    assert ended["by"] == "nurse_far_talk" and "reconnect_grace_s" not in ended, "a hand back is no drop"


async def test_talk_from_another_node_that_drops_gets_the_grace_then_the_patient_the_agent(monkeypatch):
    monkeypatch.setattr(handoff, "CLINICIAN_RECONNECT_GRACE_SECONDS", 0.5)
    nurse = await database_sync_to_async(make_clinician)("nurse_far_drop")
    session, _ = await database_sync_to_async(new_session)(urgency_level=2)
    sid = str(session.pk)
    call, patient = await on_another_node(sid, voice=True)
    await take_over(nurse, sid, patient)
    talk = await open_talk(sid, nurse)
    assert (await talk.receive_json_from(timeout=30))["type"] == "talk_ready"
    dropped = time.monotonic()
    await talk.disconnect(timeout=30)  # the clinician's browser went away: no hand back, no close
    await until(lambda: said(patient, handoff.CLINICIAN_LOST_TEXT), "the lost-clinician message", timeout=15)
    assert time.monotonic() - dropped >= 0.45, "the fallback waits for the reconnect grace"
    assert call.taken_over_by is None and call.voice.agent_replies, "never silence"
    await call.drain()

    @database_sync_to_async
    def stored():
        return TriageSession.objects.get(pk=sid), list(
            AuditEvent.objects.filter(session_id=sid, kind="clinician_voice_ended").values_list(
                "payload", flat=True
            )
        )

    session, ended = await stored()
    await end(call)
    assert session.taken_over_by_id is None and session.status == "escalated"
    assert ended and ended[0]["reconnect_grace_s"] == 0.5, "the socket's node learns the call waited"
