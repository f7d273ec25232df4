"""Barge-in decisions with the real VAD, segmenter and tiny.en on Piper bursts over the agent
(voice.bargein_eval, simulated time, ASR latency modelled as 0.1 s so the test does not depend
on how busy the machine is)."""

from __future__ import annotations

import pytest

from voice.bargein_eval import BACKCHANNELS, INTERRUPTIONS, _speech, pipeline_recognizer, simulate_burst

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
    # the old gate needed two partial words or 800 ms of voice: ~0.9-1.1 s
    assert out.decided_ms <= 900, out
    if text.split(",")[0] in ("Wait", "Sorry", "No", "Stop"):
        assert out.reason == "first_word" and out.decided_ms <= 500, out


@pytest.mark.parametrize("text", BACKCHANNELS)
def test_backchannels_resume_the_agent(transcribe, text):
    out = simulate_burst(_speech(text), transcribe, text=text, kind="backchannel", asr_latency_s=0.1)
    assert out.decision == "resume", out
    if text in ("Yeah.", "Right."):
        # heard in a partial: plays on 100 ms after the voice stops, not after pause + decode
        assert out.reason == "backchannel_partial" and out.decided_ms <= 600, out
