"""Spoken dev emergencies through the real pipeline (VAD, streaming tiny.en with the clinical
vocabulary, endpointing, the real TriageInterview): the red flag reaches level 1-2 on what the
clinician sees after the first statement, for both synthetic voices. ``python -m
evals.voice.spoken`` runs the full sample; this is the affordable slice."""

from __future__ import annotations

import asyncio

import pytest

from evals.voice.asr_clinical import Item, items_by_id, speech
from voice.audio import float32_to_pcm16

pytestmark = [pytest.mark.models, pytest.mark.timeout(600)]

# Heart attack, stroke (speech), anaphylaxis, a floppy infant: four red-flag families that
# reached level 1 with both voices in the 2026-12-01 run of ``python -m evals.voice.spoken``
# (the run itself reports the ones that did not; docs/benchmarks.md).
IDS = ("D001", "P004", "V003", "U014")


@pytest.fixture(scope="module")
def items() -> list[Item]:
    out = items_by_id(IDS)  # refuses an id whose text the rules do not send to level 1-2
    assert all(it.emergency for it in out)
    return out


@pytest.fixture(scope="module")
def runtime(items):
    from voice.config import PipelineConfig
    from voice.runtime import VoiceRuntime

    for it in items:  # synthesize (cached) before any loop runs
        for voice in ("piper", "espeak"):
            speech(it.text, voice)
    config = PipelineConfig(llm_backend="none")
    rt = VoiceRuntime.load(config)
    assert rt.recognizer.bias_text  # the default: the rules' clinical vocabulary
    yield rt, config
    rt.close()


@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_spoken_emergencies_reach_level_1_or_2(runtime, items, voice):
    from evals.voice.spoken import speak_once

    rt, config = runtime

    async def run_all():
        out = []
        for it in items:
            out.append((it.id, *await speak_once(rt, config, it, float32_to_pcm16(speech(it.text, voice)))))
        return out

    results = asyncio.run(run_all())
    lost = [r for r in results if r[1] is None or r[1] > 2]
    assert lost == [], lost
    assert all(escalated for _, level, escalated, *_ in results if level == 1)
