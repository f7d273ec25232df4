"""What a host asks of a VoiceSession (issue 16): ``say`` fixed text, ``interrupt`` the agent,
agent replies off while a clinician holds the call, and the played milliseconds that every
``AgentReplyFinished`` carries (what Turn.played_ms stores).

Real VAD, segmenter, endpointing, rules, Piper and phrase cache; the recognizer is the clearly
marked fake ``ScriptedRecognizer`` (tests/fakes.py: it always "hears" the whole sentence), and
``SimulatedClient`` plays the agent's audio in real time and reports it back."""

from __future__ import annotations

import asyncio

import pytest

from evals.voice.simulate import SimulatedClient, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer
from tests.speech import speech_pcm16k
from tests.voice.test_pipeline_logic import FIRST, WHOLE, _tail, policy
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentText,
    AssessmentUpdated,
    FinalTranscript,
    StateChanged,
    TurnMetrics,
)
from voice.pipeline import VoiceSession
from voice.tts import pcm_ms

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]

NOTICE = "A clinician is joining the call now. Please stay on the line."
LONG = "Do you have a fever, or have you felt hot and shivery at any time today?"


@pytest.fixture(scope="module")
def sentence():
    return speech_pcm16k(FIRST) + speech_pcm16k("some tiredness since this morning.")


async def _session(*, realtime: bool):
    config = PipelineConfig(llm_backend="none")
    runtime = FakeRuntime(config, ScriptedRecognizer(lambda _seconds, _partial: WHOLE))
    client = SimulatedClient(instant_playback=not realtime)
    session = VoiceSession(runtime, policy(), client.emit, config)
    client.attach(session)
    return runtime, session, client


def sent_ms(client, reply_id: int) -> float:
    return sum(pcm_ms(e.pcm, e.sample_rate) for e in client.of(AgentAudio) if e.reply_id == reply_id)


def finished(client, reply_id: int):
    return lambda e: isinstance(e, AgentReplyFinished) and e.reply_id == reply_id


async def test_say_speaks_fixed_text_as_one_reply_and_records_it_played_whole():
    runtime, session, client = await _session(realtime=True)
    try:
        reply_id = await session.say(NOTICE, kind="clinician_joining")  # no greeting before it
        assert NOTICE in runtime.phrases, "kept whole in the shared cache: the next call says it at once"
        end = await client.wait_for(finished(client, reply_id), timeout=30)
        started = client.of(AgentReplyStarted)
        assert [(e.reply_id, e.kind, e.required_text) for e in started] == [
            (reply_id, "clinician_joining", NOTICE)
        ]
        texts = [(e.text, e.source) for e in client.of(AgentText)]
        assert texts == [(NOTICE, "script")], "one caption line, verbatim"
        assert sent_ms(client, reply_id) > 2000
        assert not end.interrupted and end.text == NOTICE
        # Played to the end: all the audio the host took, though the client's report of the last
        # chunk may come after the reply closed.
        assert end.played_ms == pytest.approx(sent_ms(client, reply_id), abs=0.1)
        assert session.transcript == [("agent", NOTICE)]
        assert not any(isinstance(e, TurnMetrics) for e in client.events), "no turn: no telemetry"
        states = [(e.previous, e.current) for e in client.of(StateChanged)]
        assert states == [
            ("idle", "listening"),
            ("listening", "agent_speaking"),
            ("agent_speaking", "listening"),
        ]
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_interrupt_cuts_the_reply_and_keeps_what_the_client_played_after_the_stop():
    runtime, session, client = await _session(realtime=True)
    try:
        first = await session.say(LONG, kind="question", allow_interruptions=True)
        await asyncio.sleep(0.6)  # the client is playing it
        assert await session.interrupt() == first
        stop = await client.wait_for(lambda e: isinstance(e, AgentInterrupted), timeout=5)
        assert stop.reply_id == first and stop.by_host
        end = await client.wait_for(finished(client, first), timeout=5)
        reported = client._playing[first].total_ms()  # what the client said it played at the stop
        assert end.interrupted and 300 < end.played_ms < sent_ms(client, first)
        assert end.played_ms == pytest.approx(reported, abs=1.0)
        assert 0 < len(end.text.split()) < len(LONG.split()), "only the words that were played"
        assert session.state == "listening"
        # Nothing playing: nothing to interrupt. say() stops what is playing before it speaks.
        assert await session.interrupt() is None
        second = await session.say("Thank you.", kind="question", allow_interruptions=True)
        third = await session.say(NOTICE, kind="clinician_joining")
        cut = await client.wait_for(finished(client, second), timeout=5)
        assert cut.interrupted
        assert not (await client.wait_for(finished(client, third), timeout=30)).interrupted
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_with_agent_replies_off_the_rules_hear_every_turn_and_the_agent_says_nothing(sentence):
    runtime, session, client = await _session(realtime=False)
    try:
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
        session.set_agent_replies(False)
        assert not session.agent_replies
        await stream_pcm(session, sentence)
        metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
        held = metrics.turn_id
        assert [e.text for e in client.of(FinalTranscript)] == [WHOLE]
        assert any(isinstance(e, AssessmentUpdated) and not e.on_partial for e in client.events), (
            "the rules heard the turn"
        )
        assert not [e for e in client.of(AgentReplyStarted) if e.turn_id == held], "the agent said nothing"
        assert any(e.cause == "agent_held" for e in client.of(StateChanged))
        assert session.stats.speculations == 0
        # say() still speaks while the agent's replies are off.
        notice = await session.say(NOTICE, kind="clinician_joining")
        await client.wait_for(finished(client, notice), timeout=10)

        session.set_agent_replies(True)  # handed back: the next turn is answered
        await stream_pcm(session, sentence)
        answered = await _tail(
            session, client, lambda e: isinstance(e, AgentReplyStarted) and e.turn_id > held
        )
        assert answered.kind != "clinician_joining"
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_played_ms_reports_after_a_reply_closed_or_before_a_stop_change_nothing():
    runtime, session, client = await _session(realtime=True)
    try:
        reply_id = await session.say("Thank you.", kind="question", allow_interruptions=True)
        await session.playback_report(reply_id, 5.0)  # the queue ran dry: not what was heard
        await session.interrupt()
        # The client never answers the stop (its reports go to a dead socket): unknown, not the
        # stale report.
        client.session = None
        end = await client.wait_for(finished(client, reply_id), timeout=5)
        assert end.interrupted and end.played_ms is None
        await session.playback_report(reply_id, 300.0)  # late: the reply is closed
        assert session._sent_ms == {} and session._reports == {} and session._played == {}
    finally:
        await session.end("test")
        client.close()
        runtime.close()
