"""Barge-in decisions with the real VAD, segmenter and tiny.en on Piper bursts over the agent
(evals.voice.bargein, simulated time, ASR latency modelled as 0.1 s so the test does not depend
on how busy the machine is)."""

from __future__ import annotations

import pytest

from evals.voice.bargein import BACKCHANNELS, INTERRUPTIONS, _speech, pipeline_recognizer, simulate_burst

pytestmark = pytest.mark.models


# The clinical vocabulary prompt as the rule set 2026.12.28 derived it, when the bounds below were
# measured. The pipeline derives it from the rule set in force (clinical_rules.vocabulary), so each
# fold of the rules can reorder it and move a tiny.en partial by a frame or two ("Actually, I
# think my knee is swollen." decided at 900 ms with this prompt and 920 ms with 2026.12.30's):
# the gate's timing is tested on a fixed prompt, and what the live prompt does to clinical words is
# measured by evals.voice.asr_clinical.
BOUNDS_VOCABULARY = (
    "pain,breathing,blood,chest,pregnancy,bleeding,baby,vomiting,injury,tummy,fever,high,breathlessness,"
    "severe,confusion,headache,heavy,pressure,drowsiness,face,sudden,vision,child,feeling,limb,painful,"
    "pale,skin,swelling,blue,hard,reliever,sweating,swollen,abdominal,heart,inhaler,shoulder,weakness,"
    "worse,attack,bump,burn,cold,disease,faintness,legs,medicine"
)


@pytest.fixture(scope="module")
def transcribe():
    """tiny.en built as the pipeline builds it (fitted window, a clinical vocabulary prompt)."""
    from dataclasses import replace

    from voice.config import PipelineConfig
    from voice.provisioning import ModelSettings

    config = replace(PipelineConfig(), asr_vocabulary=BOUNDS_VOCABULARY)
    return pipeline_recognizer(config, model_settings=ModelSettings(asr_model="tiny.en")).transcribe


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
