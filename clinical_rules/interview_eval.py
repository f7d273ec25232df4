"""Whole-interview evaluation: every dev vignette played as a call with a simulated caller.

The text-only evaluation scores the level after the first statement; a real call goes on: the
interview asks its questions and the caller's answers can raise (or, through the answers the
rules define, settle) the level. Here each vignette's first statement is followed by the
answers of :class:`~clinical_rules.simulated_caller.SimulatedCaller`, fed from
``vignettes/dev_facts.yaml`` (vignettes without facts use the stated default), and the FINAL
disposition is scored against ``expected_final`` (else the vignette's ``expected``).

    python -m clinical_rules.evaluate --interview [--unknown no|unsure] [--json FILE]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import VIGNETTE_DIR, Outcome, Vignette, load_vignettes, metrics
from .loader import load_ruleset
from .ruleset import RuleSet
from .simulated_caller import CallerFacts, InterviewRun, load_facts, run_interview

FACTS_FILE = "dev_facts.yaml"


@dataclasses.dataclass(frozen=True, slots=True)
class InterviewOutcome:
    vignette: Vignette
    expected_final: int
    run: InterviewRun
    has_facts: bool


def run_all(
    vignettes: Sequence[Vignette],
    facts: dict[str, CallerFacts],
    ruleset: RuleSet | None = None,
    *,
    unknown: str = "no",
) -> list[InterviewOutcome]:
    rs = ruleset or load_ruleset()
    ids = {v.id for v in vignettes}
    stray = sorted(set(facts) - ids)
    if stray:
        raise ValueError(f"facts for vignettes that do not exist: {stray}")
    out = []
    for v in vignettes:
        f = facts.get(v.id)
        if f is not None:
            f.check(v.id, rs)
        run = run_interview(v.text, facts=f, context=v.context, ruleset=rs, unknown=unknown)
        expected = f.expected_final if f is not None and f.expected_final is not None else v.expected
        out.append(InterviewOutcome(v, expected, run, f is not None))
    return out


def interview_metrics(outcomes: Sequence[InterviewOutcome]) -> dict[str, Any]:
    """The text evaluation's metrics on the final level, plus how the calls ended."""
    scored = [
        Outcome(dataclasses.replace(o.vignette, expected=o.expected_final), o.run.final_level, o.run.escalated,
                o.run.rule_ids)
        for o in outcomes
    ]  # fmt: skip
    m = metrics(scored)
    n = len(outcomes)
    m["n_with_facts"] = sum(o.has_facts for o in outcomes)
    m["no_level_at_end"] = [o.vignette.id for o in outcomes if o.run.final_level is None]
    m["unfinished"] = [o.vignette.id for o in outcomes if not o.run.finished]
    m["mean_turns"] = round(sum(len(o.run.turns) for o in outcomes) / n, 2) if n else 0.0
    m["raised_by_answers"] = [
        o.vignette.id
        for o in outcomes
        if o.run.final_level is not None
        and (o.run.first_level is None or o.run.final_level < o.run.first_level)
    ]
    return m


def evaluate_interviews(
    directory: Path = VIGNETTE_DIR, *, unknown: str = "no", ruleset: RuleSet | None = None
) -> tuple[dict[str, Any], list[InterviewOutcome]]:
    rs = ruleset or load_ruleset()
    vignettes = load_vignettes(directory / "dev.yaml")
    path = directory / FACTS_FILE
    facts = load_facts(path) if path.exists() else {}
    outcomes = run_all(vignettes, facts, rs, unknown=unknown)
    return interview_metrics(outcomes), outcomes


def report(m: dict[str, Any], outcomes: Sequence[InterviewOutcome], *, unknown: str, verbose: bool) -> str:
    lines = [
        f"== dev, whole interview (simulated caller, unknown facts answered {unknown!r}): {m['n']} calls, "
        f"{m['n_with_facts']} with facts, {m['mean_turns']} answers per call on average",
        f"  emergency recall on the final level  : {m['emergency_recall']:.1%}",
        f"  emergencies sent to level 1-2        : {m['emergency_detected']:.1%}",
        f"  final level accuracy                 : {m['level_accuracy']:.1%}",
        f"  within one level                     : {m['within_one_level']:.1%}",
        f"  under-triage / over-triage           : {m['under_triage_rate']:.1%} / {m['over_triage_rate']:.1%}",
        f"  over-triage of self-care cases       : {m['selfcare_over_triage_rate']:.1%}",
        f"  calls that ended without a level     : {len(m['no_level_at_end'])} {m['no_level_at_end'][:10]}",
        f"  calls that did not finish            : {len(m['unfinished'])} {m['unfinished'][:10]}",
        f"  raised by the answers                : {len(m['raised_by_answers'])}",
    ]
    if m["misses"]:
        lines.append("  final-level mismatches:")
        by_id = {o.vignette.id: o for o in outcomes}
        for miss in m["misses"]:
            o = by_id[miss["id"]]
            arrow = "UNDER" if (miss["predicted"] or 9) > miss["expected"] else "over"
            lines.append(
                f"    {miss['id']}: expected {miss['expected']} got {miss['predicted']} ({arrow}; "
                f"first statement {o.run.first_level}) {','.join(miss['rules'][:3])}"
            )
            if verbose:
                lines.append(f"        {o.vignette.text}")
                for asked, said in o.run.turns:
                    lines.append(f"          {asked} -> {said}")
    return "\n".join(lines)


def to_json(m: dict[str, Any], outcomes: Sequence[InterviewOutcome]) -> dict[str, Any]:
    return {
        "metrics": m,
        "calls": [
            {
                "id": o.vignette.id,
                "expected_final": o.expected_final,
                "first_level": o.run.first_level,
                "final_level": o.run.final_level,
                "escalated": o.run.escalated,
                "turns": [list(t) for t in o.run.turns],
            }
            for o in outcomes
        ],
    }
