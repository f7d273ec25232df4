"""Affect through a real VoiceSession: Piper speech in, webrtcvad, tiny.en, the clinical rules,
the Praat worker process; the breathless turn's reading is emitted after its final transcript,
its question is queued in the interview (asked next, once) and the level is the rules' own."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from evals.voice import affect as E
from evals.voice.simulate import SimulatedClient, affect_line, comfort_noise, stream_pcm
from voice.affect import AffectObserved
from voice.audio import float32_to_pcm16
from voice.config import PipelineConfig
from voice.events import AgentReplyFinished, AssessmentUpdated, FinalTranscript
from voice.pipeline import VoiceSession
from voice.runtime import VoiceRuntime

pytestmark = [pytest.mark.models, pytest.mark.timeout(300)]

FIRST = "my ankle is swollen after I twisted it playing football yesterday"
BREATHLESS = "I have had an itchy rash on my arm for about a week now"


@pytest.fixture(scope="module")
def runtime():
    rt = VoiceRuntime.load(PipelineConfig(llm_backend="none"))
    yield rt
    rt.close()


def pcm(audio: np.ndarray) -> bytes:
    lead = np.zeros(E.RATE // 2, np.float32)
    return float32_to_pcm16(np.concatenate([lead, audio]))


async def say(session, client, audio: np.ndarray, turns_before: int) -> AgentReplyFinished:
    await stream_pcm(session, pcm(audio))
    done = asyncio.get_running_loop().create_future()

    async def noise():
        for i in range(150):
            if done.done():
                return
            await stream_pcm(session, comfort_noise(200, seed=i))

    feeder = asyncio.ensure_future(noise())
    try:
        return await client.wait_for(
            lambda e: isinstance(e, AgentReplyFinished) and e.turn_id > turns_before, timeout=90
        )
    finally:
        done.set_result(True)
        feeder.cancel()


async def test_a_breathless_turn_is_tagged_and_its_question_is_asked_once(runtime):
    from clinical_rules import PatientContext, TriageInterview

    policy = TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))
    client = SimulatedClient(instant_playback=True)
    session = VoiceSession(runtime, policy, client.emit, PipelineConfig(llm_backend="none"))
    client.attach(session)
    await session.start()
    try:
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
        fluent, _ = E.condition_audio("fluent", FIRST, "piper")
        first = await say(session, client, fluent, 0)
        breath, _ = E.condition_audio("breath", BREATHLESS, "piper")
        await say(session, client, breath, first.turn_id)
        reading = await client.wait_for(
            lambda e: isinstance(e, AffectObserved) and e.reading.tag("breathless") is not None, timeout=30
        )
        await session.affect.wait_idle()
    finally:
        await session.end("test")
    first_reading = next(e for e in client.of(AffectObserved) if e.turn_id == first.turn_id)
    assert first_reading.reading.tags == () and first_reading.reading.in_baseline
    tag = reading.reading.tag("breathless")
    assert tag.attention and reading.questions_queued == ("general.breathing",)
    assert reading.reading.features.cost_ms > 0 and reading.reading.baseline.turns == 1
    # After the final transcript of its turn; the rules' own assessment of that turn is untouched.
    finals = {e.turn_id: i for i, e in enumerate(client.events) if isinstance(e, FinalTranscript)}
    assert client.events.index(reading) > finals[reading.turn_id]
    # The level is what the rules say of these words alone (the same interview without audio).
    words = TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))
    for e in client.of(FinalTranscript):
        if e.text.strip():
            expected = words.observe_final(e.text)
            words.next_prompt()
            got = next(a for a in client.of(AssessmentUpdated) if a.turn_id == e.turn_id and not a.on_partial)
            assert (got.level, got.disposition) == (expected.level, expected.disposition)
    assert "ATTENTION" in affect_line(reading) and "asks general.breathing" in affect_line(reading)
    # Queued once (never again), and asked at the next question slot; the answer goes through the rules.
    assert not policy.queue_question("general.breathing")
    policy.observe_final("no")
    assert policy.next_prompt().question_id == "general.breathing"


DISTRESSED = "please hurry I'm so scared, I have a rash on my arm and it keeps getting bigger"
LATER = "it started on Monday and it is itchy"


async def test_high_distress_brings_the_empathy_phrase_once_and_calm_replies(runtime):
    from clinical_rules import PatientContext, TriageInterview
    from clinical_rules.affect import default_affect_rules
    from voice.events import AgentText

    empathy = default_affect_rules().empathy_phrase
    policy = TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))
    client = SimulatedClient(instant_playback=True)
    session = VoiceSession(runtime, policy, client.emit, PipelineConfig(llm_backend="none"))
    client.attach(session)
    await session.start()
    try:
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
        assert session._speaker_for(policy.next_prompt()) is session._speaker  # normal pace so far
        words, _ = E.condition_audio("fluent", DISTRESSED, "piper")
        first = await say(session, client, words, 0)
        reading = await client.wait_for(
            lambda e: isinstance(e, AffectObserved) and e.turn_id == first.turn_id
        )
        assert reading.reading.tag("distress").grade == "high", affect_line(reading)
        assert session._speaker_for(policy.next_prompt()) is session._calm_speaker
        later, _ = E.condition_audio("fluent", LATER, "piper")
        second = await say(session, client, later, first.turn_id)
        third = await say(session, client, E.condition_audio("fluent", "no", "piper")[0], second.turn_id)
    finally:
        await session.end("test")
    said = [e for e in client.of(AgentText) if e.text == empathy]
    assert len(said) == 1, [e.text for e in client.of(AgentText)]  # once, not on every reply
    assert said[0].reply_id == second.reply_id and third.reply_id != said[0].reply_id
    assert empathy in runtime.phrases and runtime.phrases.get(empathy, session._calm_speaker.prosody)


def test_emergency_scripts_are_cached_at_the_calm_pace_in_the_background(runtime):
    """An emergency script is spoken calmly and must still start at once: its normal-pace audio
    is cached at load (it stands in until then), its calm audio once the background warm-up ends."""
    from clinical_rules import load_ruleset
    from voice.llm.chunker import split_clauses
    from voice.prosody import CALM
    from voice.tts import normalize_phrase

    scripts = [s.text for s in load_ruleset().scripts.values()]
    clauses = [c for text in scripts for c in split_clauses(normalize_phrase(text))]
    assert clauses and all(runtime.phrases.get(c) is not None for c in clauses)
    assert runtime.background_warm_done.wait(timeout=600)
    missing = [c for c in clauses if runtime.phrases.get(c, CALM) is None]
    assert missing == []
    c = clauses[0]
    assert len(runtime.phrases.get(c, CALM)) > len(runtime.phrases.get(c))
