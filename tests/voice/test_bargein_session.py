"""Barge-in decisions through the real session (issue 12: faster barge-in decisions).

The VAD, segmenter, barge-in gate, playback estimate and reply path are real; the recognizer
is a TEST DOUBLE (``ScriptedRecognizer``, tests/fakes.py) that says what each decode of the
burst heard, so which decode decides is exact, and a buzz the VAD calls speech stands in for
the caller's voice over the agent (a tone: ``ToneSynthesizer``). The client plays the agent's
audio in real time, so the caller speaks while the agent is still talking."""

from __future__ import annotations

import threading

import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer, ToneSynthesizer, voiced_buzz
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyStarted,
    AgentResumed,
    SpeechPaused,
    SpeechStarted,
)
from voice.pipeline import VoiceSession

pytestmark = pytest.mark.timeout(60)


def _policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


def interrupted_turn(client) -> int:
    return next(e for e in client.of(SpeechStarted) if e.turn_id > 0).turn_id


async def _over_the_greeting(recognizer: ScriptedRecognizer, speech: bytes, until, **config):
    """Start a call, let the greeting play ~0.5 s, then speak ``speech`` over it and keep an
    open microphone until ``until(client)``; returns (session, client) still open."""
    cfg = PipelineConfig(llm_backend="none", **config)
    runtime = FakeRuntime(cfg, recognizer, synthesizer=ToneSynthesizer())
    client = SimulatedClient(instant_playback=False)
    session = VoiceSession(runtime, _policy(), client.emit, cfg)
    client.attach(session)
    await session.start()
    greeting = await client.wait_for(lambda e: isinstance(e, AgentReplyStarted) and e.turn_id == 0)
    await client.wait_for(lambda e: isinstance(e, AgentAudio) and e.reply_id == greeting.reply_id)
    await stream_pcm(session, comfort_noise(500) + speech)
    for i in range(100):
        if until(client):
            break
        await stream_pcm(session, comfort_noise(100, seed=i))
    return session, client, runtime, greeting


async def test_a_content_word_in_the_first_partial_interrupts_before_the_burst_is_decoded():
    """ "Pain." alone in a partial of a burst still going on is the caller taking the turn: it
    interrupts at once (``first_word``), while the decode of the whole burst has not even run
    (final decodes are held). Before, one word interrupted only if it opened an interruption
    ("Wait"), so this waited for the 800 ms duration rule. The burst over the agent started,
    and held it, on 80 ms of voice (4 frames), not the segmenter's usual 120."""
    recognizer = ScriptedRecognizer(lambda _s, partial: "Pain." if partial else "Pain in my chest.")
    recognizer.gate = threading.Event()  # no decode of the whole burst comes back meanwhile
    session, client, runtime, greeting = await _over_the_greeting(
        recognizer, voiced_buzz(1500), lambda c: c.of(AgentInterrupted)
    )
    try:
        (interrupted,) = client.of(AgentInterrupted)
        assert interrupted.reply_id == greeting.reply_id
        assert session.stats.barge_in_reasons == {"first_word": 1}
        # decided on a partial while the caller was still speaking: the burst had not paused,
        # so no decode of the whole burst had started
        assert recognizer.calls and recognizer.calls[0][1] is True
        pauses = [e for e in client.of(SpeechPaused) if e.turn_id == interrupted_turn(client)]
        assert all(client.events.index(interrupted) < client.events.index(p) for p in pauses)
        (paused,) = client.of(AgentPaused)
        assert client.events.index(paused) < client.events.index(interrupted)
        onset = next(e for e in client.of(SpeechStarted) if e.turn_id > 0)
        assert onset.detected_t - onset.t == pytest.approx(0.08)  # quick start: the 4th voiced frame
        assert paused.speech_onset == onset.t
    finally:
        recognizer.gate.set()
        await session.end("test")
        client.close()
        runtime.close()


async def test_a_heard_backchannel_is_let_go_when_its_voice_goes_quiet():
    """A partial heard "Mm-hmm." and the voice stopped: the hold ends once the frames have been
    below the hold's level for ``barge_in_quiet_release_ms`` (40 ms), though webrtcvad still
    calls the decay speech. ``barge_in_release_ms`` is set out of reach here, so only the quiet
    release can let it go before the segmenter's pause (before: at the pause, 200 ms of
    unvoiced frames after webrtcvad's own tail)."""
    recognizer = ScriptedRecognizer(lambda _s, _partial: "Mm-hmm.")
    session, client, runtime, greeting = await _over_the_greeting(
        recognizer,
        voiced_buzz(400),
        lambda c: any(e.turn_id > 0 for e in c.of(SpeechPaused)),
        barge_in_release_ms=10_000,
    )
    try:
        assert not client.of(AgentInterrupted)
        (paused,) = client.of(AgentPaused)
        (resumed,) = client.of(AgentResumed)
        assert paused.reply_id == resumed.reply_id == greeting.reply_id
        pause = next(e for e in client.of(SpeechPaused) if e.turn_id > 0)
        assert client.events.index(paused) < client.events.index(resumed) < client.events.index(pause)
        assert session.stats.barge_in_resumes == 1 and session.stats.barge_ins == 0
    finally:
        await session.end("test")
        client.close()
        runtime.close()
