"""Session logic that needs exact control over what the recognizer "hears": speculation
discarded when the patient goes on, speculation off, ``end()`` in the middle of a reply,
budgets. Real VAD, segmenter, endpointing, rules and Piper; the recognizer is a clearly
marked fake (``halves_recognizer``, tests/fakes.py) that answers from the audio length, so the timing
of each decode is deterministic. The full-model round trips are in test_pipeline.py."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer
from tests.speech import speech_pcm16k
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentText,
    BudgetMissed,
    EndOfTurn,
    FinalTranscript,
    SpeechPaused,
    SpeechResumed,
    StateChanged,
    TurnMetrics,
)
from voice.pipeline import VoiceSession

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]

FIRST = "I have had a bad headache and"
WHOLE = "I have had a bad headache and some tiredness since this morning."


def halves_recognizer(split_s: float) -> ScriptedRecognizer:
    """TEST DOUBLE: short audio "is" the first half of the sentence, longer audio the whole
    sentence (tests/fakes.py: ``gate``, when set, holds every final decode until released)."""
    return ScriptedRecognizer(lambda seconds, _partial: FIRST if seconds < split_s else WHOLE)


def policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


@pytest.fixture(scope="module")
def halves():
    first, second = speech_pcm16k(FIRST), speech_pcm16k("some tiredness since this morning.")
    return first, second


async def _session(recognizer, **cfg):
    config = PipelineConfig(llm_backend="none", **cfg)
    runtime = FakeRuntime(config, recognizer)  # no LLM: the rules' exact text is spoken
    client = SimulatedClient(instant_playback=True)
    session = VoiceSession(runtime, policy(), client.emit, config)
    client.attach(session)
    await session.start()
    await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
    return runtime, session, client


async def _tail(session, client, until, max_s=20.0):
    task = asyncio.ensure_future(client.wait_for(until, timeout=max_s))
    i = 0
    while not task.done():
        await stream_pcm(session, comfort_noise(100, seed=i), stop=task.done)
        i += 1
    return task.result()


async def test_discarded_speculation_is_never_heard(halves):
    first, second = halves
    rec = halves_recognizer(split_s=(len(first) / 32000) + 0.6)
    runtime, session, client = await _session(rec, speculation=True)
    try:
        # Part one, a 700 ms pause (the rules' words look unfinished, so the endpoint waits),
        # during which the pause decode returns at once and a reply is prepared behind the gate.
        await stream_pcm(session, first + comfort_noise(700))
        assert session.stats.speculations == 1
        await stream_pcm(session, second)
        await client.wait_for(lambda e: isinstance(e, SpeechResumed))
        metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
        assert session.stats.speculations_discarded >= 1 and session.stats.speculations_used == 1
        assert len(client.of(EndOfTurn)) == 1
        final = client.of(FinalTranscript)[0]
        assert final.text == WHOLE
        replies = [e for e in client.of(AgentReplyStarted) if e.turn_id == metrics.turn_id]
        assert len(replies) == 1  # only the confirmed reply was ever opened...
        i_end = client.events.index(client.of(EndOfTurn)[0])
        # ...and no agent audio at all between the greeting and the end of the turn.
        assert not any(isinstance(e, AgentAudio) and e.reply_id != 1 for e in client.events[:i_end]), (
            "a discarded reply was heard"
        )
        assert metrics.response_onset_ms is not None
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_without_speculation_the_ack_leads_and_the_final_pass_runs_after_the_endpoint(halves):
    first, second = halves
    rec = halves_recognizer(split_s=0.0)  # always the whole sentence
    runtime, session, client = await _session(rec, speculation=False)
    try:
        await stream_pcm(session, first + second)
        metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
        assert session.stats.speculations == 0
        texts = [e for e in client.of(AgentText) if e.reply_id > 1]
        assert texts[0].source == "cached" and len(texts) >= 2
        # The final pass ran after the endpoint: one more non-partial decode than pauses.
        finals = [d for d, partial in rec.calls if not partial]
        assert len(finals) >= 2
        assert "asr_final" in metrics.stages and metrics.stages["asr_final"] >= metrics.stages["endpoint"]
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_end_in_the_middle_closes_every_reply_and_ends(halves):
    first, second = halves
    rec = halves_recognizer(split_s=0.0)
    rec.gate = threading.Event()  # the final decode never returns before end()
    runtime, session, client = await _session(rec, speculation=True)
    try:
        await stream_pcm(session, first + second)
        started = await _tail(
            session, client, lambda e: isinstance(e, AgentReplyStarted) and e.turn_id > 0, max_s=10
        )
        await session.end("caller_hung_up")
        rec.gate.set()
        finished = [e for e in client.of(AgentReplyFinished) if e.reply_id == started.reply_id]
        assert len(finished) == 1 and finished[0].interrupted
        last = client.events[-1]
        assert isinstance(last, StateChanged) and last.current == "ended" and last.cause == "caller_hung_up"
        assert session.state == "ended"
        n = len(client.events)
        await session.feed_audio(comfort_noise(100))  # ignored after the end
        assert len(client.events) == n
    finally:
        rec.gate.set()
        client.close()
        runtime.close()


async def test_budget_misses_are_events(halves):
    first, second = halves
    rec = halves_recognizer(split_s=0.0)
    budgets = {"endpoint": 1.0, "response_onset": 1.0, "answer_onset": 100000.0}
    runtime, session, client = await _session(rec, speculation=True, budgets_ms=budgets)
    try:
        await stream_pcm(session, first + second)
        metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
        missed = {e.stage for e in client.of(BudgetMissed) if e.turn_id == metrics.turn_id}
        assert {"endpoint", "response_onset"} <= missed and "answer_onset" not in missed
        assert set(metrics.budget_misses) == missed
        miss = next(e for e in client.of(BudgetMissed) if e.stage == "endpoint")
        assert miss.actual_ms == pytest.approx(metrics.stages["endpoint"], abs=0.2)
        assert np.isfinite(miss.actual_ms) and miss.actual_ms > miss.budget_ms
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_clause_pauses_of_an_open_statement_get_no_final_decode(halves):
    """A first statement's short clause pause (300 ms) cannot end the turn (an open statement
    waits 1 s), so no final-quality decode or speculative reply is spent on it; the pause at
    the end gets one once it has lasted ``open_pause_decode_ms``."""
    first, second = halves
    for delay_ms, pause_finals in ((450, 0), (0, 1)):
        rec = halves_recognizer(split_s=(len(first) / 32000) + 0.6)
        runtime, session, client = await _session(rec, open_pause_decode_ms=delay_ms)
        try:
            await stream_pcm(session, first + comfort_noise(300))
            await client.wait_for(lambda e: isinstance(e, SpeechPaused))
            await stream_pcm(session, second)
            await client.wait_for(lambda e: isinstance(e, SpeechResumed))
            resumed_at = len(rec.calls)
            assert sum(not partial for _, partial in rec.calls[:resumed_at]) == pause_finals, rec.calls
            assert session.stats.speculations == pause_finals
            metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
            assert client.of(FinalTranscript)[0].text == WHOLE
            assert len(client.of(EndOfTurn)) == 1 and metrics.response_onset_ms is not None
        finally:
            await session.end("test")
            client.close()
            runtime.close()
