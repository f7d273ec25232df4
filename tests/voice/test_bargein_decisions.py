"""Barge-in decisions with the real VAD, segmenter and tiny.en on Piper bursts over the agent
(evals.voice.bargein, simulated time, ASR latency modelled as 0.1 s so the test does not depend
on how busy the machine is)."""

from __future__ import annotations

import pytest

from evals.voice.bargein import BACKCHANNELS, INTERRUPTIONS, _speech, pipeline_recognizer, simulate_burst

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def transcribe():
    """tiny.en built as the pipeline builds it (fitted window, clinical vocabulary prompt)."""
    from voice.provisioning import ModelSettings

    return pipeline_recognizer(model_settings=ModelSettings(asr_model="tiny.en")).transcribe


@pytest.mark.parametrize("text", INTERRUPTIONS)
def test_interruptions_are_declared_from_their_first_words(transcribe, text):
    out = simulate_burst(_speech(text), transcribe, text=text, kind="interruption", asr_latency_s=0.1)
    assert out.decision == "interrupt", out
    # over the agent a loud burst starts, and holds it, on 80 ms of voice (was 120)
    assert out.held_ms is not None and out.held_ms <= 100, out
    # the old gate needed two partial words or 800 ms of voice: ~0.9-1.1 s
    assert out.decided_ms <= 900, out
    if text.split(",")[0] in ("Wait", "Sorry", "No", "Stop"):
        # the second partial, 100 ms after an unsure first one, decides (420 ms at 200 ms)
        assert out.reason == "first_word" and out.decided_ms <= 400, out


@pytest.mark.parametrize("text", BACKCHANNELS)
def test_backchannels_resume_the_agent(transcribe, text):
    out = simulate_burst(_speech(text), transcribe, text=text, kind="backchannel", asr_latency_s=0.1)
    assert out.decision == "resume", out
    assert out.held_ms is not None and out.held_ms <= 100, out  # held on 80 ms of voice
    if text in ("Yeah.", "Right."):
        # heard in a partial: plays on 60 ms after the voice stops, not after pause + decode
        assert out.reason == "backchannel_partial" and out.decided_ms <= 500, out
    if text in ("Yeah.", "Right.", "Uh-huh.", "Okay."):
        # ... and once its frames are below the hold's level for 40 ms, before webrtcvad
        # calls them unvoiced (300-420 ms; 400-540 ms on the unvoiced frames alone)
        assert out.reason == "backchannel_partial" and out.decided_ms <= 440, out
    if text in ("Mm.", "<cough>"):
        # no reliable word in any partial of a short burst: let go at its pause, not after
        # the decode of the whole burst too (740-820 ms before)
        assert out.reason == "no_words_partial" and out.decided_ms <= 660, out
