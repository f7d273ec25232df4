"""The in-memory rule set: concepts, rules, questions, complaints, scripts, compiled matchers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .context import ContextAnalyzer
    from .patterns import PatternMatcher
    from .text import Normaliser


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Concept:
    id: str
    label: str
    patterns: tuple[str, ...] = ()
    negative_patterns: tuple[str, ...] = ()
    implies: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    sets: tuple[tuple[str, Any], ...] = ()
    answer_only: bool = False
    family_history: bool = False  # "my dad had <this>" reads as family history
    lasting: bool = False  # a lasting state: "had a transplant last year" is still true now
    request: bool = False  # something asked for: "I wondered if I need my review" is the request
    where: Where = Where("", 0)


@dataclass(frozen=True, slots=True)
class Condition:
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    and_any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    age_band: tuple[str, ...] | None = None
    pregnant: bool | None = None
    subject: tuple[str, ...] | None = None
    severity_gte: float | None = None
    duration_hours_gte: float | None = None
    duration_hours_lt: float | None = None
    temperature_gte: float | None = None
    age_months_lt: float | None = None
    age_months_gte: float | None = None

    def concepts(self) -> tuple[str, ...]:
        return self.all + self.any + self.and_any + self.none


@dataclass(frozen=True, slots=True)
class Pending:
    when_unknown: str  # fact name, e.g. "age_band"
    any: tuple[str, ...]  # at least one of these concepts must be positive
    level: int
    question: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    version: str
    label: str
    level: int
    when: Condition
    escalate: bool = False
    script: str | None = None
    complaint: str | None = None
    pending: Pending | None = None
    suppresses: tuple[str, ...] = ()
    cleared_when_negated: tuple[str, ...] = ()
    cleared_level: int | None = None
    provenance: tuple[str, ...] = ()
    rationale: str = ""
    # a high-risk modifier: when its conditions hold, the complaint's own level is made this many
    # levels more urgent, never beyond `level` (its cap); it never lowers (see engine)
    raise_by: int | None = None
    where: Where = Where("", 0)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    type: str  # yes_no / scale / duration / age
    text: str
    concept: str | None = None
    fact: str | None = None
    inverted: bool = False
    ask_if: tuple[tuple[str, tuple[str, ...]], ...] = ()
    where: Where = Where("", 0)


@dataclass(frozen=True, slots=True)
class Complaint:
    id: str
    label: str
    triggers: tuple[str, ...]
    questions: tuple[str, ...]
    where: Where = Where("", 0)


@dataclass(frozen=True, slots=True)
class Script:
    id: str
    text: str  # already formatted with the emergency number
    level: int = 1


@dataclass(frozen=True, slots=True)
class LevelInfo:
    level: int
    disposition: str
    label: str
    target: str
    ctas: str
    mts: str


@dataclass(frozen=True, slots=True)
class AnswerLexicon:
    unsure: tuple[tuple[str, ...], ...]
    yes: tuple[tuple[str, ...], ...]
    no: tuple[tuple[str, ...], ...]
    quantities: tuple[tuple[tuple[str, ...], float], ...]
    units_hours: dict[str, float]
    duration_anchors: tuple[tuple[tuple[str, ...], float], ...]


@dataclass(eq=False)
class RuleSet:
    """A loaded, validated and compiled rule set. Immutable in use; shared by every call."""

    id: str
    title: str
    version: str
    emergency_number: str
    crisis_line: str
    path: str
    max_clarify: int
    max_questions: int
    levels: dict[int, LevelInfo]
    provenance: dict[str, dict[str, str]]
    concepts: dict[str, Concept]
    rules: tuple[Rule, ...]
    questions: dict[str, Question]
    complaints: dict[str, Complaint]
    fallback_complaint: str
    scripts: dict[str, Script]
    texts: dict[str, str]  # greeting, clarify, not_understood, closing, rephrase
    clarify_answer: dict[str, str]
    dispositions: dict[int, str]
    answers: AnswerLexicon
    normaliser: Normaliser
    matcher: PatternMatcher
    context: ContextAnalyzer
    assertion_of: dict[str, str]  # context category -> assertion bucket
    fillers: frozenset[str] = frozenset()
    rules_by_id: dict[str, Rule] = field(default_factory=dict)
    complaint_of_concept: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rules_by_id = {r.id: r for r in self.rules}
        for complaint in self.complaints.values():
            for c in complaint.triggers:
                self.complaint_of_concept.setdefault(c, complaint.id)

    def __repr__(self) -> str:
        return f"<RuleSet {self.id} {self.version}: {len(self.concepts)} concepts, {len(self.rules)} rules>"

    def provenance_titles(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.provenance[i]["title"] for i in ids if i in self.provenance)

    def fixed_phrases(self) -> list[str]:
        """Every fixed text the agent may speak (for TTS pre-synthesis)."""
        out = [
            self.texts["greeting"],
            self.texts["clarify"],
            self.texts["not_understood"],
            self.texts["closing"],
            self.texts["rephrase"],
        ]
        out += [s.text for s in self.scripts.values()]
        out += list(self.dispositions.values())
        out += [q.text for q in self.questions.values()]
        return list(dict.fromkeys(out))
