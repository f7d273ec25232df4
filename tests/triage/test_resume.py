"""Failover: a call whose owner died resumes on the node the reconnect reaches, from what is
stored (triage/resume.py). Real consumer, real voice pipeline and models, real PostgreSQL and
Redis; the dead owner is simulated in this process (its pipeline stops without ending the
session, its lease lapses, the record of who ran the call names another node)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

import triage.live
from tests.speech import frames, silence, speech_pcm16k
from tests.triage.test_patient_consumer import UTTERANCE, Inbox, connect
from triage import ownership, services
from triage.audit import verify_chain
from triage.models import AuditEvent, TriageSession, Turn
from triage.resume import CUT_OFF, ID_STRIDE

pytestmark = [pytest.mark.models, pytest.mark.services, pytest.mark.django_db(transaction=True)]
ANSWER = "No, nothing like that."


@pytest.fixture(scope="module")
def voice_models():
    """The process-wide voice runtime, loaded once outside any event loop; the test speech too."""
    from triage.runtime import load_runtime_blocking

    speech_pcm16k(UTTERANCE), speech_pcm16k(ANSWER)
    return load_runtime_blocking()


async def say(communicator, text: str) -> None:
    for frame in frames(silence(300) + speech_pcm16k(text) + silence(1500)):
        await communicator.send_input({"type": "websocket.receive", "bytes": frame})
        await asyncio.sleep(0.02)  # real time


async def reply_text(inbox: Inbox, reply_id: int, timeout: float = 90, *, answer_only: bool = False) -> str:
    """The words of one reply, once it has ended (``answer_only``: without its acknowledgement)."""
    await inbox.seen(lambda e: e["type"] == "agent_reply_end" and e["reply_id"] == reply_id, timeout)
    clauses = [e for e in inbox.events if e["type"] == "agent_text" and e["reply_id"] == reply_id]
    return " ".join(e["text"] for e in clauses if e.get("answer", True) or not answer_only)


async def test_a_call_whose_owner_died_resumes_here_with_nothing_lost_or_duplicated(voice_models):
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    registry = ownership.leases()
    try:
        # 1. The call runs on its first node: greeting, the patient's first turn, a question.
        first, inbox = await connect(token)
        await inbox.until(lambda e: e["type"] == "ready", timeout=180)
        greeting = await inbox.until(lambda e: e["type"] == "agent_reply_end", timeout=60)
        await first.send_to(
            text_data=json.dumps({"type": "playback", "reply_id": greeting["reply_id"], "played_ms": 9000})
        )
        await say(first, UTTERANCE)
        said = await inbox.until(lambda e: e["type"] == "transcript" and e["final"], timeout=90)
        asked = await inbox.seen(
            lambda e: e["type"] == "agent_reply_start" and e["reply_id"] != greeting["reply_id"], timeout=90
        )
        question = await reply_text(inbox, asked["reply_id"], answer_only=True)
        assert question
        live = triage.live.LiveCall.get(sid)
        await live.voice.affect.wait_idle()  # the turn's affect reading (its baseline) is in
        await live.drain()  # what the first node stored before it died
        baseline = live.voice.affect.tracker.baseline
        assert baseline is not None and baseline.turns == 1

        # 2. The node dies: its pipeline stops without ending the session; its lease lapses.
        live.ended = True  # nothing more from it reaches storage (no session_ended)
        live._writer.cancel()
        live._control.cancel()
        triage.live._calls.pop(sid)
        await live.voice.end("node_died")
        await first.disconnect()
        await registry.redis.delete(ownership.owner_key(sid))
        await registry.redis.set(ownership.last_owner_key(sid), "web1/1/dead", ex=60)

        # 3. The reconnect reaches this node: the call resumes from what is stored.
        second, inbox = await connect(token)
        ready = await inbox.until(lambda e: e["type"] == "ready", timeout=180)
        assert ready["node"] == ownership.NODE_ID
        # The caller's affect baseline came with the call (stored as affect_baseline).
        assert triage.live.LiveCall.get(sid).voice.affect.tracker.baseline == baseline
        opening = await inbox.until(lambda e: e["type"] == "agent_reply_start", timeout=60)
        spoken = await reply_text(inbox, opening["reply_id"])
        assert spoken.startswith(CUT_OFF) and question in spoken, (spoken, question)

        # 4. The interview goes on; the new turn is stored next to the old one.
        await second.send_to(
            text_data=json.dumps({"type": "playback", "reply_id": opening["reply_id"], "played_ms": 9000})
        )
        await say(second, ANSWER)
        answered = await inbox.until(lambda e: e["type"] == "transcript" and e["final"], timeout=90)
        await second.send_to(text_data=json.dumps({"type": "end"}))
        await inbox.until(lambda e: e["type"] == "ended", timeout=60)
        await second.disconnect()
    finally:
        await registry.redis.delete(ownership.owner_key(sid), ownership.last_owner_key(sid))
        if registry._renewer is not None:
            registry._renewer.cancel()
        await registry.redis.aclose()

    @database_sync_to_async
    def stored():
        events = AuditEvent.objects.filter(session_id=sid).order_by("seq")
        patient = [(e.payload["turn_id"], e.payload["text"]) for e in events.filter(kind="patient_turn")]
        moves = [e.payload for e in events.filter(kind="call_moved")]
        turns = list(
            Turn.objects.filter(session_id=sid).order_by("index").values_list("speaker", "text", "index")
        )
        return patient, moves, turns, verify_chain(sid)

    patient, moves, turns, broken = await stored()
    # Nothing lost, nothing twice: both turns, in order, the second numbered clear of the first.
    assert [text for _, text in patient] == [said["text"], answered["text"]]
    assert patient[0][0] < ID_STRIDE <= patient[1][0]
    assert [t for s, t, _ in turns if s == "patient"] == [said["text"], answered["text"]]
    assert len({index for _, _, index in turns}) == len(turns)
    assert any(s == "agent" and t.startswith(CUT_OFF) for s, t, _ in turns)
    assert moves == [{"from": "web1/1/dead", "to": ownership.INSTANCE, "resumed": True}]
    assert broken is None


async def test_a_node_that_lost_a_calls_lease_stops_its_pipeline_without_ending_the_call(voice_models):
    """This process stalled past the lease and another node took the call (its caller's reconnect
    reached it): the next renewal round stops the pipeline here, storing nothing more and not
    ending the session, which goes on there. One pipeline per call."""
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    registry = ownership.leases()
    try:
        first, inbox = await connect(token)
        await inbox.until(lambda e: e["type"] == "ready", timeout=180)
        await inbox.until(lambda e: e["type"] == "agent_reply_end", timeout=60)  # the greeting
        await first.disconnect()  # the caller's socket dropped; the call waits for a reconnect here
        assert triage.live.LiveCall.get(sid) is not None
        await registry.redis.set(ownership.owner_key(sid), "web2/2/b", px=30_000)  # taken meanwhile

        lost = await registry.renew_and_stop_lost()
        assert lost == [sid]
        await asyncio.gather(*registry.stopping)
        assert triage.live.LiveCall.get(sid) is None  # no pipeline left here
        assert await registry.redis.get(ownership.owner_key(sid)) == "web2/2/b"  # theirs
    finally:
        await registry.redis.delete(ownership.owner_key(sid), ownership.last_owner_key(sid))
        if registry._renewer is not None:
            registry._renewer.cancel()
        await registry.redis.aclose()

    @database_sync_to_async
    def state():
        kinds = list(AuditEvent.objects.filter(session_id=sid).values_list("kind", flat=True))
        return TriageSession.objects.get(pk=sid).is_open, kinds, verify_chain(sid)

    still_open, kinds, broken = await state()
    assert still_open and "session_ended" not in kinds  # the call goes on on the other node
    assert broken is None
