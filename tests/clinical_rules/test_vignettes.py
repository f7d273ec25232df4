"""The vignette suite and the bars from the issue.

dev.yaml: written with the rules (including earlier held-out rounds folded in after use).
heldout.yaml: written after the rule set was frozen; never used to change rules. The bars are
asserted on dev; the held-out set is held to the numbers measured when it was written (see
docs/clinical-rules.md) so a regression there fails too.
"""

import pytest

from clinical_rules.evaluate import VIGNETTE_DIR, load_vignettes, metrics, run


@pytest.fixture(scope="module")
def dev(rs):
    return metrics(run(load_vignettes(VIGNETTE_DIR / "dev.yaml"), rs))


@pytest.fixture(scope="module")
def heldout(rs):
    return metrics(run(load_vignettes(VIGNETTE_DIR / "heldout.yaml"), rs))


def test_suite_size_and_spread():
    vs = load_vignettes(VIGNETTE_DIR / "dev.yaml") + load_vignettes(VIGNETTE_DIR / "heldout.yaml")
    assert len(vs) >= 60
    levels = {v.expected for v in vs}
    assert levels == {1, 2, 3, 4, 5}
    tags = {t for v in vs for t in v.tags}
    assert {"negation", "other_person", "history", "hypothetical", "asr", "child", "pregnancy"} <= tags
    assert sum(1 for v in vs if v.expected == 5) >= 10


def test_dev_bars(dev):
    assert dev["emergency_recall"] == 1.0, dev["misses"]  # no emergency ever triaged down
    assert dev["selfcare_over_triage_rate"] <= 0.25, dev["misses"]
    assert dev["level_accuracy"] >= 0.95, dev["misses"]


def test_heldout_holds_measured_generalisation(heldout):
    if heldout["n"] == 0:
        pytest.skip("heldout.yaml is empty: a new blind round is written after the next freeze")
    # Round 11 (written blind against rule files 0f94e7f3..., 40 vignettes) scored at the freeze:
    # emergency recall 100% (22/22), accuracy 87.5%, self-care over-triage 33.3% (2 of 6 sent to
    # the GP). Held to those figures so a regression fails (docs/clinical-rules.md, "Evaluation").
    assert heldout["n"] >= 40
    assert heldout["emergency_recall"] == 1.0, heldout["misses"]  # no emergency triaged down
    assert heldout["emergency_detected"] == 1.0, heldout["misses"]
    assert heldout["level_accuracy"] >= 0.875, heldout["misses"]
    assert heldout["selfcare_over_triage_rate"] <= 0.34, heldout["misses"]


def test_metrics_definitions():
    from clinical_rules.evaluate import Outcome, Vignette
    from clinical_rules.types import PatientContext

    def o(exp, pred):
        return Outcome(Vignette("x", "t", exp, PatientContext(), ()), pred, False, ())

    m = metrics([o(1, 1), o(1, 2), o(2, 2), o(5, 4), o(5, 5), o(3, None)])
    assert m["emergency_recall"] == pytest.approx(2 / 3, abs=1e-3)  # 1 -> 2 is triaged down
    assert m["emergency_detected"] == 1.0
    assert m["under_triage_rate"] == pytest.approx(2 / 6, abs=1e-3)  # unknown counts as under
    assert m["over_triage_rate"] == pytest.approx(1 / 6, abs=1e-3)
    assert m["selfcare_over_triage_rate"] == 0.5
    assert m["level_accuracy"] == pytest.approx(3 / 6, abs=1e-3)
