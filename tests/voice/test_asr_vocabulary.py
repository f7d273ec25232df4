"""Clinical vocabulary bias: the word list comes from the rule set, reaches both decode paths of the
real recognizer, is configurable, and keeps red-flag words through tiny.en on synthesized speech."""

from __future__ import annotations

import numpy as np
import pytest

from clinical_rules import load_ruleset, vocabulary
from clinical_rules.vocabulary import ranked_words
from voice.asr import bias_prompt, resolve_vocabulary
from voice.config import PipelineConfig


def test_the_vocabulary_is_the_urgent_rules_own_clinical_words():
    words = vocabulary()
    assert 20 <= len(words) <= 60
    assert {"chest", "breathe", "bleeding"} & set(words)
    assert not {"with", "really", "have", "feel", "like"} & set(words)
    assert len(vocabulary(limit=5)) == 5 and vocabulary(limit=5) == words[:5]
    # built from the rule set passed in, not a hard-coded list
    assert ranked_words(load_ruleset())[: len(words)] == words


def test_the_setting_turns_the_bias_off_or_replaces_the_words():
    assert resolve_vocabulary("off") == resolve_vocabulary("") == resolve_vocabulary(None) == ()
    assert resolve_vocabulary("rules") == tuple(vocabulary())
    assert resolve_vocabulary(" sepsis, anaphylaxis ,") == ("sepsis", "anaphylaxis")
    assert bias_prompt(["chest", "stroke"]) == "Chest, stroke."
    assert bias_prompt("Seizure, overdose.") == "Seizure, overdose."
    assert bias_prompt(()) == ""
    assert PipelineConfig.from_env({"VOICE_ASR_VOCABULARY": "off"}).asr_vocabulary == "off"
    assert PipelineConfig().asr_vocabulary == "rules"


@pytest.mark.models
def test_the_bias_reaches_the_fitted_and_the_full_window_but_not_barge_in_decodes(
    tiny_recognizer, monkeypatch
):
    from voice.asr import WhisperRecognizer

    rec = WhisperRecognizer(tiny_recognizer.model_dir, vocabulary=["chest", "stroke"])
    assert rec.bias_text == "Chest, stroke."
    seen: list[tuple[str, str | None]] = []
    original_fitted = rec._transcribe_fitted
    monkeypatch.setattr(
        rec, "_transcribe_fitted", lambda a, p, *rest: seen.append(("fit", p)) or original_fitted(a, p, *rest)
    )
    original_full = rec._model.transcribe

    def full(audio, **kw):
        seen.append(("full", kw.get("initial_prompt")))
        return original_full(audio, **kw)

    monkeypatch.setattr(rec._model, "transcribe", full)
    audio = np.zeros(16000, np.float32)
    rec.transcribe(audio, prompt="my committed words")
    rec.transcribe(audio, partial=True)
    rec.transcribe(audio, full_window=True)  # speech over the agent: calibrated unprompted
    rec.window = "full"
    rec.transcribe(audio)
    assert seen == [
        ("fit", "Chest, stroke. my committed words"),
        ("fit", "Chest, stroke."),
        ("full", None),
        ("full", "Chest, stroke."),
    ]


# R019 lost "pain" to "paint" without the bias in the 2026-12-01 run, with both voices; the others
# are red-flag families tiny.en kept; D063 (sunburn) must not be raised.
ASR_IDS = ("D001", "H016", "P004", "V003", "R019", "D063")


@pytest.mark.models
@pytest.mark.timeout(600)
@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_red_flag_terms_survive_tiny_en_with_the_bias(tiny_recognizer, voice):
    """A small affordable slice of ``python -m evals.voice.asr_clinical``: Piper and espeak-ng speech of
    dev vignettes through tiny.en with the defaults (fitted window, the rules' vocabulary)."""
    from evals.voice.asr_clinical import Condition, _transcriber, evaluate, items_by_id, speech
    from voice.asr import WhisperRecognizer

    items = items_by_id(ASR_IDS)
    rec = WhisperRecognizer(tiny_recognizer.model_dir, vocabulary=resolve_vocabulary("rules"))
    audio = {it.id: speech(it.text, voice) for it in items}
    r = evaluate(items, _transcriber(rec), Condition("tiny.en", "fit", "rules", voice), audio)
    assert r.n_emergency == 5
    assert r.kept_1_2 == 1.0, r.lost
    assert r.term_recall >= 0.9
    assert r.raised == 0
    assert r.wer <= 0.25
