"""Stateless assessment: the same function the pipeline, Django and the shell use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .answers import parse_answer
from .engine import Analysis, analyse, build_assessment, synthetic_analysis
from .loader import load_ruleset
from .ruleset import RuleSet
from .types import Assessment, PatientContext


def assess(
    utterances: str | Sequence[str],
    context: PatientContext | None = None,
    ruleset: RuleSet | None = None,
    *,
    answers: Mapping[str, str] | None = None,
) -> Assessment:
    """Assess everything said so far (and, optionally, answers to protocol questions by id).

    Never raises on odd input: empty, garbled or huge text gives a safe assessment (level None
    and a clarify prompt when nothing is recognisable; long input keeps its most recent words).
    """
    rs = ruleset or load_ruleset()
    ctx = context or PatientContext()
    if isinstance(utterances, str) or utterances is None:
        utterances = [utterances or ""]
    analyses: list[Analysis] = [analyse(rs, u if isinstance(u, str) else str(u)).with_utterance(i)
                                for i, u in enumerate(utterances)]  # fmt: skip
    answered: list[str] = []
    for qid, text in (answers or {}).items():
        q = rs.questions.get(qid)
        if q is None:
            continue
        res = parse_answer(rs, q, text, analyse(rs, text), final_try=True)
        if res.status == "ok":
            analyses.append(synthetic_analysis(rs, text, res.mentions, res.facts))
            answered.append(qid)
    assessment, _ = build_assessment(rs, ctx, analyses, answered=answered, asked=answered)
    return assessment
