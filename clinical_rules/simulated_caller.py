"""A deterministic simulated caller: answers the interview's questions from a vignette's facts.

The facts say what is true of the patient in the rules' own terms (concept ids and numbers),
not how to answer a given question, so the same facts answer whatever the interview asks:

    D029: {present: [sweating], absent: [chest_pressure], severity: 7, duration_hours: 3,
           age_years: 58, expected_final: 1}

* yes/no question about a concept: "Yes." if the concept is present, "No." if absent (an
  ``inverted`` question, "Are you able to keep fluids down?", is answered the other way round);
* ``pregnant: true/false`` answers the pregnancy question;
* severity (0-10), duration (``duration_hours``) and age (``age_years`` / ``age_months``) are
  spoken as numbers ("About 3 hours.", "She is 7 months old.");
* anything the facts do not say gets the stated default: ``unknown="no"`` (the default) denies
  the concept, as most callers would for a symptom they do not have; ``unknown="unsure"``
  answers "I'm not sure" (the interview then triages up). Numbers not given are "I'm not sure."
  An age not given is taken from the vignette's age band, when it has one.
* "please describe the problem" (clarify without a question) is answered by repeating the
  first statement once, then "I don't know."

Used by ``python -m clinical_rules.evaluate --interview`` and the whole-interview test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .interview import TriageInterview
from .ruleset import RuleSet
from .types import PatientContext, Prompt
from .yamlsrc import load_yaml

UNKNOWN_POLICIES = ("no", "unsure")
# A typical age (years) for each band, for an age question the facts do not answer.
_BAND_AGE_MONTHS = {
    "under_3_months": 1.5,
    "3_months_to_2_years": 12,
    "2_to_11": 6 * 12,
    "12_to_17": 15 * 12,
    "18_to_64": 40 * 12,
    "65_plus": 78 * 12,
}
MAX_TURNS = 25  # a runaway interview is a failure, not an endless loop


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """What is true of one vignette's patient (all optional)."""

    present: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()
    severity: float | None = None
    duration_hours: float | None = None
    age_months: float | None = None
    pregnant: bool | None = None
    expected_final: int | None = None  # None: the vignette's first-statement level

    @classmethod
    def from_mapping(cls, vid: str, data: Mapping[str, Any]) -> CallerFacts:
        known = {"present", "absent", "severity", "duration_hours", "age_years", "age_months", "pregnant",
                 "expected_final", "note"}  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{vid}: unknown fact keys {sorted(unknown)} (allowed: {sorted(known)})")
        present, absent = frozenset(data.get("present") or ()), frozenset(data.get("absent") or ())
        if present & absent:
            raise ValueError(f"{vid}: concepts both present and absent: {sorted(present & absent)}")
        months = data.get("age_months")
        if data.get("age_years") is not None:
            months = float(data["age_years"]) * 12
        expected = data.get("expected_final")
        if expected is not None and int(expected) not in (1, 2, 3, 4, 5):
            raise ValueError(f"{vid}: expected_final must be 1-5, not {expected!r}")
        return cls(
            present=present,
            absent=absent,
            severity=_num(data.get("severity")),
            duration_hours=_num(data.get("duration_hours")),
            age_months=_num(months),
            pregnant=data.get("pregnant"),
            expected_final=int(expected) if expected is not None else None,
        )

    def check(self, vid: str, rs: RuleSet) -> None:
        """Concept ids must exist in the rule set (a typo would silently answer the default)."""
        missing = sorted(c for c in self.present | self.absent if c not in rs.concepts)
        if missing:
            raise ValueError(f"{vid}: facts name unknown concepts {missing}")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def load_facts(path: str | Path) -> dict[str, CallerFacts]:
    data, problems = load_yaml(Path(path))
    if problems:
        raise ValueError("; ".join(f"{p.file}:{p.line}: {p.message}" for p in problems))
    items = (data or {}).get("facts") or {}
    if not isinstance(items, dict):
        raise ValueError(f"{path}: 'facts' must map vignette ids to facts")
    return {str(vid): CallerFacts.from_mapping(str(vid), v or {}) for vid, v in items.items()}


@dataclass
class SimulatedCaller:
    """Answers one call's prompts; deterministic for the same facts and prompts."""

    statement: str
    facts: CallerFacts = field(default_factory=CallerFacts)
    context: PatientContext = field(default_factory=PatientContext)
    unknown: str = "no"
    _rephrased: bool = False

    def __post_init__(self) -> None:
        if self.unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, not {self.unknown!r}")

    def answer(self, prompt: Prompt, rs: RuleSet) -> str:
        qid = prompt.question_id
        if qid is None or qid not in rs.questions:
            if not self._rephrased:  # "could you tell me what the problem is?"
                self._rephrased = True
                return self.statement
            return "I don't know."
        q = rs.questions[qid]
        f = self.facts
        if q.type == "yes_no":
            if q.fact == "pregnant":
                known = f.pregnant if f.pregnant is not None else self.context.pregnant
                if known is None:
                    return "I'm not sure." if self.unknown == "unsure" else "No."
                return "Yes." if known else "No."
            if q.concept in f.present:
                has = True
            elif q.concept in f.absent:
                has = False
            elif self.unknown == "unsure":
                return "I'm not sure."
            else:
                has = False
            return "Yes." if has != q.inverted else "No."
        if q.type == "scale":
            return "I'm not sure." if f.severity is None else f"About {_spoken(f.severity)}."
        if q.type == "duration":
            return "I'm not sure." if f.duration_hours is None else f"About {_duration(f.duration_hours)}."
        if q.type == "age":
            months = f.age_months
            if months is None and self.context.age_band in _BAND_AGE_MONTHS:
                months = _BAND_AGE_MONTHS[self.context.age_band]
            return "I'm not sure." if months is None else _age(months)
        return "I'm not sure."


def _spoken(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{_spoken(round(hours * 60))} minutes"
    if hours < 48:
        return f"{_spoken(round(hours, 1))} hours" if hours != 1 else "an hour"
    return f"{_spoken(round(hours / 24))} days"


def _age(months: float) -> str:
    if months < 3:
        return f"{_spoken(round(months * 4.3))} weeks old."
    if months < 24:
        return f"{_spoken(round(months))} months old."
    return f"{_spoken(int(months // 12))} years old."


@dataclass(frozen=True, slots=True)
class InterviewRun:
    """One simulated call: the dialogue and where it ended."""

    final_level: int | None
    escalated: bool
    first_level: int | None  # after the first statement (what the text-only evaluation scores)
    finished: bool
    turns: tuple[tuple[str, str], ...]  # (agent prompt kind:question id, caller answer)
    rule_ids: tuple[str, ...]


def run_interview(
    statement: str,
    *,
    facts: CallerFacts | None = None,
    context: PatientContext | None = None,
    ruleset: RuleSet | None = None,
    unknown: str = "no",
) -> InterviewRun:
    """Play a whole call: the first statement, then answers until the interview finishes."""
    ctx = context or PatientContext()
    iv = TriageInterview(context=ctx, ruleset=ruleset)
    rs = iv.ruleset
    caller = SimulatedCaller(statement, facts or CallerFacts(), ctx, unknown)
    first = iv.observe_final(statement)
    first_level = int(first.level) if first.level is not None else None
    turns: list[tuple[str, str]] = []
    for _ in range(MAX_TURNS):
        prompt = iv.next_prompt()
        if iv.finished:
            break
        reply = caller.answer(prompt, rs)
        turns.append((f"{prompt.kind}:{prompt.question_id or ''}", reply))
        iv.observe_final(reply)
    a = iv.assessment
    return InterviewRun(
        final_level=int(a.level) if a.level is not None else None,
        escalated=iv.escalated,
        first_level=first_level,
        finished=iv.finished,
        turns=tuple(turns),
        rule_ids=tuple(a.rule_ids),
    )
