"""Learned emergency scorer: the stored model, the raise-only contract, its evidence, and the live runner.

Real parts: the stored model (rulesets/default/emergency_scorer.npz), the bundled MiniLM encoder,
the real rule set and interview. The contract tests feed hand-made readings so that every input
level is tried, including ones the model would not produce.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import numpy as np
import pytest

from clinical_rules import PatientContext, TriageInterview, assess
from clinical_rules.emergency_scorer import (
    RULE_ID,
    EmergencyScorer,
    LearnedRaise,
    Neighbour,
    ScorerModelError,
    ScorerReading,
    features,
    fit,
    load_model,
    may_raise,
    predict,
    raise_only,
    sha256_of,
)
from clinical_rules.evaluate import VIGNETTE_DIR, load_vignettes
from clinical_rules.types import UrgencyLevel
from evals.voice.emergency_scorer import MAX_FALSE_RAISE, MAX_FALSE_RAISE_SELFCARE
from voice.embedding import MiniLMEmbedder
from voice.provisioning import ModelSettings, embedding_model_dir
from voice.safety_net_runner import SafetyNetRunner

TEEN = PatientContext(subject="other", age_band="12_to_17")
# Torsion said in no words the rules hold (round 22's miss, kept out of dev): the rules give 3.
UNSEEN_TORSION = (
    "It's my young lad, he's 14, he woke up about five with a desperate pain down below, "
    "and he's been sick twice"
)
ROUTINE = "I'd like to book an appointment to get my ears syringed, they've felt a bit blocked for a week"


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return MiniLMEmbedder(embedding_model_dir(ModelSettings(cache_dir=tmp_path_factory.mktemp("models"))))


@pytest.fixture(scope="module")
def scorer(embedder, model):
    return EmergencyScorer(embedder, model)


def _reading(p: float, threshold: float = 0.77) -> ScorerReading:
    return ScorerReading(p, threshold, (Neighbour("X001", 1, 0.8), Neighbour("Y002", 2, 0.7)), "test")


# --- the stored model ----------------------------------------------------------------------------


def test_the_stored_model_was_trained_on_todays_dev_set(model):
    # dev.yaml changed (a round folded in) -> retrain: python -m evals.voice.emergency_scorer train
    assert model.dev_sha256 == sha256_of(VIGNETTE_DIR / "dev.yaml")
    dev = load_vignettes(VIGNETTE_DIR / "dev.yaml")
    assert model.dev_ids == tuple(v.id for v in dev)
    assert list(model.dev_levels) == [v.expected for v in dev]


def test_the_threshold_keeps_cross_validated_false_raises_within_budget(model):
    cal = model.calibration
    assert cal["logo_false_raise"] <= MAX_FALSE_RAISE
    assert cal["logo_false_raise_selfcare"] <= MAX_FALSE_RAISE_SELFCARE
    assert cal["n_rounds"] >= 20 and cal["logo_auc"] >= 0.85
    assert 0.5 <= model.threshold < 1.0


def test_refitting_the_stored_evidence_reproduces_the_weights(model):
    # the weights are data: fitting again on the stored dev embeddings gives the same scorer
    dev = load_vignettes(VIGNETTE_DIR / "dev.yaml")
    x = features(model.dev_embeddings, [v.context for v in dev])
    w, b = fit(x, (model.dev_levels <= 2).astype(float))
    sample = x[:: max(1, len(dev) // 200)]
    assert np.abs(predict(sample, w, b) - predict(sample, model.weights, model.bias)).max() < 0.03


def test_fit_is_deterministic_and_separates_what_is_separable():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    w1, b1 = fit(x, y)
    w2, b2 = fit(x, y)
    assert np.array_equal(w1, w2) and b1 == b2
    assert ((predict(x, w1, b1) >= 0.5) == (y > 0.5)).mean() >= 0.95
    with pytest.raises(ValueError):
        fit(x, np.ones(200))


def test_a_missing_or_malformed_model_fails_with_a_clear_message(tmp_path):
    with pytest.raises(ScorerModelError, match="python -m evals.voice.emergency_scorer train"):
        load_model(tmp_path / "absent.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, weights=np.zeros(3))
    with pytest.raises(ScorerModelError, match="not a valid"):
        load_model(bad)


# --- raise only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "level,escalate,p", list(itertools.product([None, 1, 2, 3, 4, 5], [False, True], [0.1, 0.95]))
)
def test_the_scorer_never_lowers_a_level_or_touches_an_escalation(level, escalate, p):
    base = assess("I have had a sore throat for two days")
    lv = UrgencyLevel(level) if level is not None else None
    a = replace(base, level=lv, disposition=lv.disposition if lv else None, escalate=escalate)
    b = raise_only(a, _reading(p), "words")
    assert b.escalate == a.escalate and b.script == a.script
    if a.level is not None:
        assert int(b.level) <= int(a.level)
    raised = b is not a
    assert raised == (p >= 0.77 and not escalate and (level is None or level >= 3))
    if raised:
        assert int(b.level) == 2 and b.reasons[-1].rule_id == RULE_ID
        assert set(a.rule_ids) <= set(b.rule_ids)


def test_a_raise_shows_its_evidence():
    f = _reading(0.91).finding("my words")
    assert f.level == 2 and not f.escalate and f.script is None
    assert "probability 0.91" in f.explanation and "threshold 0.77" in f.explanation
    assert "X001 (level 1, similarity 0.80)" in f.explanation and f.provenance
    d = LearnedRaise(_reading(0.91), "my words").to_dict()
    assert d["source"] == "emergency_scorer" and d["scorer"]["neighbours"][0]["id"] == "X001"
    assert d["label"].startswith("possible emergency")


def test_the_interview_keeps_a_raise_as_a_floor_for_the_rest_of_the_call():
    iv = TriageInterview(context=TEEN)
    a = iv.observe_final(UNSEEN_TORSION)
    assert a.level is not None and int(a.level) >= 3 and may_raise(a)
    raise_ = LearnedRaise(_reading(0.93), UNSEEN_TORSION)
    assert iv.raise_with(raise_.finding)
    assert int(iv.assessment.level) == 2 and RULE_ID in iv.assessment.rule_ids
    assert not iv.raise_with(raise_.finding)  # once per call
    assert iv.next_prompt().kind == "question"  # the interview goes on asking
    iv.observe_final("no")
    assert int(iv.assessment.level) <= 2  # no answer takes the floor away


def test_the_interview_refuses_a_raise_when_the_rules_already_have_it():
    iv = TriageInterview()
    iv.observe_final("he's not breathing and his lips are blue")
    assert iv.escalated
    assert not iv.raise_with(_reading(0.99).finding("x"))


# --- the real encoder and model ----------------------------------------------------------------


def test_stored_evidence_embeddings_come_from_the_bundled_encoder(embedder, model):
    dev = load_vignettes(VIGNETTE_DIR / "dev.yaml")[::97]
    fresh = embedder.embed([v.text for v in dev])
    stored = model.dev_embeddings[::97]
    assert (np.sum(fresh * stored, axis=1) > 0.999).all()


def test_an_emergency_in_unanticipated_words_is_raised_and_a_routine_call_is_not(scorer):
    assert int(assess(UNSEEN_TORSION, context=TEEN).level) >= 3  # the rules alone miss it
    r = scorer.score(UNSEEN_TORSION, TEEN)
    assert r.raises and all(n.level <= 2 for n in r.neighbours[:2])
    assert not scorer.score(ROUTINE, PatientContext(subject="self", age_band="18_to_64")).raises


def test_the_live_runner_raises_the_call_and_alerts_once(monkeypatch):
    iv = TriageInterview(context=TEEN)
    iv.observe_final(UNSEEN_TORSION)
    alerts = []

    async def on_hit(hit, on_partial, ms):
        alerts.append((hit.description_id, on_partial, ms))

    async def go():
        runner = SafetyNetRunner(iv, on_hit)
        await runner.observe(UNSEEN_TORSION, final=False)  # partials are never scored
        assert not runner.raises
        await runner.observe(UNSEEN_TORSION, final=True)
        await runner.observe(UNSEEN_TORSION + " and he is pale", final=True)
        return runner

    runner = asyncio.run(go())
    assert [a[0] for a in alerts].count(RULE_ID) == 1 and len(runner.raises) == 1
    assert int(iv.assessment.level) == 2 and not iv.escalated


def test_the_scorer_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("TRIAGE_EMERGENCY_SCORER", "0")
    iv = TriageInterview(context=TEEN)
    iv.observe_final(UNSEEN_TORSION)
    alerts = []

    async def on_hit(hit, on_partial, ms):
        alerts.append(hit.description_id)

    asyncio.run(SafetyNetRunner(iv, on_hit).observe(UNSEEN_TORSION, final=True))
    assert RULE_ID not in alerts and int(iv.assessment.level) >= 3


def test_the_heldout_round_with_the_scorer_holds_what_it_scored_once(scorer):
    """Round 42 (blind at 2026.12.33) through rules + scorer, as a call would see it; the rules'
    own floors are in test_vignettes.py. A retrained model or a rule change that loses any fails."""
    from evals.voice.emergency_scorer import evaluate

    path = VIGNETTE_DIR / "heldout.yaml"
    if not load_vignettes(path):
        pytest.skip("heldout.yaml is empty: the next blind round is written after the next freeze")
    result = evaluate(path, scorer)
    rules, combined = result["rules"], result["rules_and_scorer"]
    assert combined["emergency_detected"] >= 1.0 and combined["emergency_recall"] >= 1.0
    assert combined["coarse_level_accuracy"] >= 0.875
    assert combined["selfcare_over_triage_rate"] <= 0.125
    for key in ("emergency_detected", "emergency_recall"):
        assert combined[key] >= rules[key]  # raise-only: never worse on emergencies
