"""Train and evaluate the learned emergency scorer (clinical_rules.emergency_scorer).

    python -m evals.voice.emergency_scorer train      # dev.yaml -> rulesets/default/emergency_scorer.npz
    python -m evals.voice.emergency_scorer evaluate --file tests/clinical_rules/vignettes/heldout.yaml

``train`` embeds every dev vignette with the bundled all-MiniLM-L6-v2, estimates the scorer's
behaviour on statements it has not seen by leave-one-round-out cross-validation (each blind round
of the dev set is held out in turn, as a fresh round would be), picks the lowest threshold whose
cross-validated false raises stay within the budgets below, fits on the whole dev set and writes
the model with those figures. ``evaluate`` prints the rules alone beside rules + scorer on a
vignette file (table and JSON). Both need the embedding model (make install provides it).

The live calls' scorer is loaded by ``voice/emergency_scorer.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clinical_rules.emergency_scorer import (
    EmergencyScorer,
    ScorerModel,
    features,
    fit,
    load_model,
    model_path,
    predict,
    raise_only,
    round_of,
    save_model,
    sha256_of,
)
from clinical_rules.evaluate import VIGNETTE_DIR, Outcome, Vignette, load_vignettes, metrics
from clinical_rules.loader import load_ruleset

# Budgets for the cross-validated threshold: of dev statements that are NOT emergencies, at most
# this share may be raised (all of them / the self-care ones). A raise of a non-emergency is
# over-triage; the budgets keep the scorer from undoing the look-alike work in the rules.
MAX_FALSE_RAISE = 0.03
MAX_FALSE_RAISE_SELFCARE = 0.05
THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


def _embed(texts: Sequence[str]) -> np.ndarray:
    return np.asarray(_embedder().embed(list(texts)), dtype=np.float32)


def cross_validate(vignettes: Sequence[Vignette], embeddings: np.ndarray) -> np.ndarray:
    """Leave-one-round-out probabilities: each statement scored by a model that never saw its round."""
    x = features(embeddings, [v.context for v in vignettes])
    y = np.array([v.expected <= 2 for v in vignettes], dtype=np.float64)
    rounds = np.array([round_of(v.id) for v in vignettes])
    out = np.zeros(len(vignettes))
    for r in sorted(set(rounds)):
        test = rounds == r
        w, b = fit(x[~test], y[~test])
        out[test] = predict(x[test], w, b)
    return out


def auc(y: np.ndarray, s: np.ndarray) -> float:
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def calibration_table(vignettes: Sequence[Vignette], p: np.ndarray) -> list[dict[str, float]]:
    exp = np.array([v.expected for v in vignettes])
    em = exp <= 2
    rows = []
    for t in THRESHOLDS:
        r = p >= t
        rows.append(
            {
                "threshold": t,
                "emergency_recall": float(r[em].mean()),
                "false_raise": float(r[~em].mean()),
                "false_raise_selfcare": float(r[exp == 5].mean()),
                "false_raise_level3": float(r[exp == 3].mean()),
            }
        )
    return rows


def choose_threshold(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    for row in rows:
        if row["false_raise"] <= MAX_FALSE_RAISE and row["false_raise_selfcare"] <= MAX_FALSE_RAISE_SELFCARE:
            return row
    return rows[-1]


def train(dev_path: Path, out_path: Path, version: str) -> tuple[ScorerModel, list[dict[str, float]]]:
    vignettes = load_vignettes(dev_path)
    emb = _embed([v.text for v in vignettes])
    p = cross_validate(vignettes, emb)
    rows = calibration_table(vignettes, p)
    chosen = choose_threshold(rows)
    y = np.array([v.expected <= 2 for v in vignettes])
    w, b = fit(features(emb, [v.context for v in vignettes]), y.astype(np.float64))
    model = ScorerModel(
        weights=w,
        bias=b,
        threshold=float(chosen["threshold"]),
        version=version,
        dev_sha256=sha256_of(dev_path),
        dev_ids=tuple(v.id for v in vignettes),
        dev_levels=np.array([v.expected for v in vignettes]),
        dev_embeddings=emb.astype(np.float16),
        calibration={
            "logo_auc": round(auc(y, p), 4),
            "logo_emergency_recall": round(chosen["emergency_recall"], 4),
            "logo_false_raise": round(chosen["false_raise"], 4),
            "logo_false_raise_selfcare": round(chosen["false_raise_selfcare"], 4),
            "logo_false_raise_level3": round(chosen["false_raise_level3"], 4),
            "n_dev": float(len(vignettes)),
            "n_rounds": float(len({round_of(v.id) for v in vignettes})),
        },
    )
    save_model(model, out_path)
    return model, rows


def evaluate(path: Path, scorer: EmergencyScorer) -> dict[str, object]:
    from clinical_rules.api import assess

    rs = load_ruleset()
    vignettes = load_vignettes(path)
    emb = _embed([v.text for v in vignettes])
    rules, combined, raised = [], [], []
    for v, e in zip(vignettes, emb, strict=True):
        a = assess([v.text], context=v.context, ruleset=rs)
        reading = scorer.read(e, v.context)
        b = raise_only(a, reading, v.text)
        rules.append(Outcome(v, int(a.level) if a.level is not None else None, a.escalate, a.rule_ids))
        combined.append(Outcome(v, int(b.level) if b.level is not None else None, b.escalate, b.rule_ids))
        if b is not a:
            raised.append(
                {"id": v.id, "expected": v.expected, "rules": rules[-1].predicted, **reading.to_dict()}
            )
    return {
        "file": str(path),
        "ruleset_version": rs.version,
        "scorer_threshold": scorer.model.threshold,
        "rules": _strip(metrics(rules)),
        "rules_and_scorer": _strip(metrics(combined)),
        "raised": raised,
    }


def _strip(m: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in m.items() if k not in {"misses", "confusion"}}


_ROWS = (
    ("emergencies to level 1-2", "emergency_detected"),
    ("emergency recall (not triaged down)", "emergency_recall"),
    ("coarse level accuracy (1-2/3/4/5)", "coarse_level_accuracy"),
    ("level accuracy", "level_accuracy"),
    ("self-care over-triage", "selfcare_over_triage_rate"),
    ("over-triage rate", "over_triage_rate"),
)


def print_evaluation(result: dict[str, object]) -> None:
    r, c = result["rules"], result["rules_and_scorer"]
    print(f"{result['file']}: {r['n']} statements, rule set {result['ruleset_version']}, "
          f"scorer threshold {result['scorer_threshold']:.2f}")  # fmt: skip
    print(f"  {'':38s} {'rules':>8s} {'+scorer':>8s}")
    for label, key in _ROWS:
        print(f"  {label:38s} {r[key]:8.1%} {c[key]:8.1%}")
    for item in result["raised"]:
        print(
            f"  raised {item['id']}: expected {item['expected']}, rules {item['rules']}, p {item['probability']:.2f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.voice.emergency_scorer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit on dev.yaml, calibrate by leave-one-round-out, write the model")
    t.add_argument("--dev", type=Path, default=VIGNETTE_DIR / "dev.yaml")
    t.add_argument("--out", type=Path, default=model_path())
    t.add_argument("--json", type=Path, default=None, help="also write the calibration table here")
    e = sub.add_parser("evaluate", help="rules alone vs rules + scorer on a vignette file")
    e.add_argument("--file", type=Path, default=VIGNETTE_DIR / "heldout.yaml")
    e.add_argument("--model", type=Path, default=None)
    e.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "train":
        model, rows = train(args.dev, args.out, load_ruleset().version)
        print(f"{'threshold':>9s} {'em recall':>9s} {'false raise':>11s} {'self-care':>9s} {'level 3':>8s}")
        for row in rows[::5]:
            print(f"{row['threshold']:9.2f} {row['emergency_recall']:9.1%} {row['false_raise']:11.1%} "
                  f"{row['false_raise_selfcare']:9.1%} {row['false_raise_level3']:8.1%}")  # fmt: skip
        cal = model.calibration
        print(f"chosen threshold {model.threshold:.2f} (cross-validated by round, {int(cal['n_rounds'])} rounds, "
              f"{int(cal['n_dev'])} statements): AUC {cal['logo_auc']:.3f}, emergencies raised "
              f"{cal['logo_emergency_recall']:.1%}, false raises {cal['logo_false_raise']:.1%} "
              f"(self-care {cal['logo_false_raise_selfcare']:.1%}); wrote {args.out}")  # fmt: skip
        if args.json:
            args.json.write_text(
                json.dumps({"calibration": cal, "threshold": model.threshold, "table": rows}, indent=1)
            )
        return 0
    scorer = EmergencyScorer(_embedder(), load_model(args.model))
    result = evaluate(args.file, scorer)
    print_evaluation(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def _embedder():
    """One encoder per process: `evaluate` embeds the file and scores with the same one."""
    from voice.embedding import shared_embedder

    return shared_embedder()


if __name__ == "__main__":
    sys.exit(main())
