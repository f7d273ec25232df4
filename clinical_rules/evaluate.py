"""Vignette evaluation: ``python -m clinical_rules.evaluate [--set dev|heldout|all] [--verbose]``.

Prints emergency recall, under- and over-triage rates and level accuracy for the development
vignettes (written while the rules were written) and the held-out vignettes (written only after
the rule set was frozen), each a YAML list of patient statements with the expected level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import assess
from .loader import load_ruleset
from .ruleset import RuleSet
from .types import PatientContext
from .yamlsrc import load_yaml

VIGNETTE_DIR = Path(__file__).resolve().parent.parent / "tests" / "clinical_rules" / "vignettes"
SETS = ("dev", "heldout")


@dataclass(frozen=True, slots=True)
class Vignette:
    id: str
    text: str
    expected: int
    context: PatientContext
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    vignette: Vignette
    predicted: int | None
    escalate: bool
    rule_ids: tuple[str, ...]


def load_vignettes(path: str | Path) -> list[Vignette]:
    data, problems = load_yaml(Path(path))
    if problems:
        raise ValueError("; ".join(f"{p.file}:{p.line}: {p.message}" for p in problems))
    items = data.get("vignettes", []) if isinstance(data, dict) else []
    out = []
    seen = set()
    for item in items:
        vid = str(item["id"])
        if vid in seen:
            raise ValueError(f"{path}: duplicate vignette id {vid}")
        seen.add(vid)
        ctx = dict(item.get("context") or {})
        out.append(
            Vignette(
                id=vid,
                text=str(item["text"]),
                expected=int(item["expected"]),
                context=PatientContext(
                    subject=ctx.get("subject", "self"),
                    age_band=ctx.get("age_band"),
                    pregnant=ctx.get("pregnant"),
                ),
                tags=tuple(item.get("tags") or ()),
            )
        )
    return out


def run(vignettes: Sequence[Vignette], ruleset: RuleSet | None = None) -> list[Outcome]:
    rs = ruleset or load_ruleset()
    out = []
    for v in vignettes:
        a = assess([v.text], context=v.context, ruleset=rs)
        out.append(Outcome(v, int(a.level) if a.level is not None else None, a.escalate, a.rule_ids))
    return out


def metrics(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Emergency = expected level 1 or 2. Emergency recall counts an emergency as caught only if it
    was not triaged down at all (predicted level <= expected). Unknown (None) counts as under-triage."""
    n = len(outcomes)

    def pred(o: Outcome) -> int:
        return o.predicted if o.predicted is not None else 9

    emerg = [o for o in outcomes if o.vignette.expected <= 2]
    selfcare = [o for o in outcomes if o.vignette.expected == 5]
    under = [o for o in outcomes if pred(o) > o.vignette.expected]
    over = [o for o in outcomes if pred(o) < o.vignette.expected]
    exact = [o for o in outcomes if pred(o) == o.vignette.expected]
    confusion = {e: {p: 0 for p in (1, 2, 3, 4, 5, None)} for e in (1, 2, 3, 4, 5)}
    for o in outcomes:
        confusion[o.vignette.expected][o.predicted] += 1
    return {
        "n": n,
        "n_emergency": len(emerg),
        "n_selfcare": len(selfcare),
        "emergency_recall": _rate([o for o in emerg if pred(o) <= o.vignette.expected], emerg),
        "emergency_detected": _rate([o for o in emerg if pred(o) <= 2], emerg),
        "under_triage_rate": _rate(under, outcomes),
        "over_triage_rate": _rate(over, outcomes),
        "selfcare_over_triage_rate": _rate([o for o in selfcare if pred(o) < 5], selfcare),
        "level_accuracy": _rate(exact, outcomes),
        # the "coarse" accuracy: levels 1 and 2 are one class (both go to emergency care now)
        "coarse_level_accuracy": _rate(
            [o for o in outcomes if _coarse(pred(o)) == _coarse(o.vignette.expected)], outcomes
        ),
        "within_one_level": _rate([o for o in outcomes if abs(pred(o) - o.vignette.expected) <= 1], outcomes),
        "misses": [
            {
                "id": o.vignette.id,
                "expected": o.vignette.expected,
                "predicted": o.predicted,
                "rules": list(o.rule_ids),
            }
            for o in outcomes
            if pred(o) != o.vignette.expected
        ],
        "confusion": confusion,
    }


def _coarse(level: int) -> int:
    return 2 if level == 1 else level


def _rate(part: Sequence, whole: Sequence) -> float:
    return round(len(part) / len(whole), 4) if whole else 1.0


def report(name: str, m: dict[str, Any], *, verbose: bool = False, outcomes: Sequence[Outcome] = ()) -> str:
    if m["n"] == 0:  # an empty set between blind rounds: rates of nothing would read as 100%
        return f"== {name}: 0 vignettes (empty: nothing to score yet)"
    lines = [
        f"== {name}: {m['n']} vignettes ({m['n_emergency']} emergencies, {m['n_selfcare']} self-care)",
        f"  emergency recall (none triaged down) : {m['emergency_recall']:.1%}",
        f"  emergencies sent to level 1-2        : {m['emergency_detected']:.1%}",
        f"  under-triage rate                    : {m['under_triage_rate']:.1%}",
        f"  over-triage rate                     : {m['over_triage_rate']:.1%}",
        f"  over-triage of self-care cases       : {m['selfcare_over_triage_rate']:.1%}",
        f"  level accuracy                       : {m['level_accuracy']:.1%}",
        f"  coarse level accuracy (1-2/3/4/5)    : {m['coarse_level_accuracy']:.1%}",
        f"  within one level                     : {m['within_one_level']:.1%}",
        "  confusion (rows expected 1-5, columns predicted 1-5, ?):",
    ]
    for e, row in m["confusion"].items():
        lines.append(f"    {e}: " + " ".join(f"{row[p]:3d}" for p in (1, 2, 3, 4, 5, None)))
    if m["misses"]:
        lines.append("  mismatches:")
        texts = {o.vignette.id: o.vignette.text for o in outcomes}
        for miss in m["misses"]:
            arrow = "UNDER" if (miss["predicted"] or 9) > miss["expected"] else "over"
            lines.append(
                f"    {miss['id']}: expected {miss['expected']} got {miss['predicted']} ({arrow}) {','.join(miss['rules'][:4])}"
            )
            if verbose and miss["id"] in texts:
                lines.append(f"        {texts[miss['id']]}")
    return "\n".join(lines)


def evaluate_sets(
    names: Sequence[str] = SETS, directory: Path = VIGNETTE_DIR, ruleset: RuleSet | None = None
) -> dict[str, Any]:
    rs = ruleset or load_ruleset()
    out: dict[str, Any] = {"ruleset_version": rs.version}
    everything: list[Outcome] = []
    for name in names:
        path = directory / f"{name}.yaml"
        if not path.exists():
            continue
        outcomes = run(load_vignettes(path), rs)
        everything.extend(outcomes)
        out[name] = {"metrics": metrics(outcomes), "outcomes": outcomes}
    if len([n for n in names if n in out and out[n]["metrics"]["n"]]) > 1:
        out["all"] = {"metrics": metrics(everything), "outcomes": everything}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinical_rules.evaluate", description=__doc__)
    parser.add_argument("--set", choices=[*SETS, "all"], default="all")
    parser.add_argument("--dir", type=Path, default=VIGNETTE_DIR, help="folder with dev.yaml / heldout.yaml")
    parser.add_argument("--verbose", "-v", action="store_true", help="print the statement of each mismatch")
    parser.add_argument(
        "--interview",
        action="store_true",
        help="play each dev vignette as a whole call with a simulated caller; score the final level",
    )
    parser.add_argument(
        "--unknown",
        choices=["no", "unsure"],
        default="no",
        help="with --interview: how the caller answers what its facts do not say",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="with --interview: also write the results here"
    )
    args = parser.parse_args(argv)
    if args.interview:
        return _interview_main(args)
    names = SETS if args.set == "all" else (args.set,)
    result = evaluate_sets(names, args.dir)
    print(f"Rule set {result['ruleset_version']}")
    shown = False
    for name in (*names, "all"):
        if name in result:
            r = result[name]
            print(report(name, r["metrics"], verbose=args.verbose, outcomes=r["outcomes"]))
            shown = True
    if not shown:
        print(f"no vignette files found in {args.dir}", file=sys.stderr)
        return 2
    return 0


def _interview_main(args: argparse.Namespace) -> int:
    import json

    from .interview_eval import evaluate_interviews, to_json
    from .interview_eval import report as interview_report

    m, outcomes = evaluate_interviews(args.dir, unknown=args.unknown)
    print(f"Rule set {load_ruleset().version}")
    print(interview_report(m, outcomes, unknown=args.unknown, verbose=args.verbose))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(m, outcomes), indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
