"""Prosody that adapts: the calm setting really is slower with a pause after each clause (real
Piper), the phrase cache keeps each setting apart (memory and disk), and the choice by context."""

from __future__ import annotations

import pytest

from voice.compute import ComputePool
from voice.prosody import CALM, NORMAL, choose, is_elderly_caller
from voice.tts import ClauseSpeaker, PhraseCache, PiperSynthesizer, pcm_ms

pytestmark = [pytest.mark.models]

CLAUSE = "Please stay on the line and keep the door unlocked."
RATE = 16000


@pytest.fixture(scope="module")
def synth():
    from voice.provisioning import ModelSettings, piper_voice_paths

    onnx, config = piper_voice_paths(ModelSettings.from_env())
    return PiperSynthesizer.load(onnx, config)


def speech_ms(pcm: bytes) -> float:
    """Length without trailing digital silence."""
    import numpy as np

    x = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(x) > 30)
    return (loud[-1] + 1) / RATE * 1000 if loud.size else 0.0


async def test_calm_prosody_is_slower_with_a_pause_after_the_clause(synth, tmp_path):
    pool = ComputePool(1)
    handle = pool.session("prosody")
    try:
        cache = PhraseCache(synth, RATE, disk_dir=tmp_path)
        # Piper's duration noise varies a clause by a few percent: compare means of three renders.
        normal = [
            (await ClauseSpeaker(synth, cache, handle, out_rate=RATE).render(CLAUSE))[0] for _ in range(3)
        ]
        calm_speaker = ClauseSpeaker(synth, cache, handle, out_rate=RATE, prosody=CALM)
        calm = [(await calm_speaker.render(CLAUSE))[0] for _ in range(3)]
    finally:
        handle.close()
        pool.close()
    ratio = sum(map(speech_ms, calm)) / sum(map(speech_ms, normal))
    assert 1.08 <= ratio <= 1.35, ratio  # length_scale 1.25: about 15% longer
    normal, calm = normal[0], calm[0]
    trailing = pcm_ms(calm, RATE) - speech_ms(calm)
    assert trailing >= CALM.clause_pause_ms, trailing  # the clause pause is there
    assert pcm_ms(normal, RATE) - speech_ms(normal) < CALM.clause_pause_ms


async def test_until_its_calm_audio_is_cached_a_fixed_phrase_plays_at_once_from_the_normal_pace(synth):
    cache = PhraseCache(synth, RATE)
    cache.add(CLAUSE)
    pool = ComputePool(1)
    handle = pool.session("prosody")
    try:
        pcm, cached = await ClauseSpeaker(synth, cache, handle, out_rate=RATE, prosody=CALM).render(CLAUSE)
    finally:
        handle.close()
        pool.close()
    assert cached and pcm == cache.get(CLAUSE) + b"\x00\x00" * (RATE * CALM.clause_pause_ms // 1000)


def test_the_phrase_cache_keeps_each_prosody_apart_on_disk_too(synth, tmp_path):
    cache = PhraseCache(synth, RATE, disk_dir=tmp_path)
    assert cache.add(CLAUSE) == 1 and cache.add(CLAUSE, CALM) == 1 and cache.add(CLAUSE, CALM) == 0
    normal, calm = cache.get(CLAUSE), cache.get(CLAUSE, CALM)
    assert normal is not None and calm is not None and len(calm) > len(normal) * 1.08
    again = PhraseCache(synth, RATE, disk_dir=tmp_path)  # a restarted process
    assert again.add(CLAUSE, CALM) == 1 and again.add(CLAUSE) == 1 and again.disk_hits == 2
    assert again.get(CLAUSE, CALM) == calm and again.get(CLAUSE) == normal


def test_choice_by_context():
    from clinical_rules import PatientContext

    assert choose("question", distress_high=False, elderly=False) is NORMAL
    assert choose("emergency", distress_high=False, elderly=False) is CALM
    assert choose("question", distress_high=True, elderly=False) is CALM
    assert choose("disposition", distress_high=False, elderly=True) is CALM
    assert is_elderly_caller(PatientContext(subject="self", age_band="65_plus"))
    assert not is_elderly_caller(PatientContext(subject="other", age_band="65_plus"))  # a relative calls
    assert not is_elderly_caller(None)
