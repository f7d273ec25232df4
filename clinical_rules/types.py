"""Public value types: urgency scale, patient context, findings, prompts and assessments.

Everything here is immutable and JSON-serialisable through ``to_dict`` so an assessment can be
stored next to the call (Django) or sent to the dashboard unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

Subject = Literal["self", "child", "other"]
AGE_BANDS: tuple[str, ...] = (
    "under_3_months",
    "3_months_to_2_years",
    "2_to_11",
    "12_to_17",
    "18_to_64",
    "65_plus",
)
SUBJECTS: tuple[str, ...] = ("self", "child", "other")
PROMPT_KINDS: tuple[str, ...] = ("greeting", "question", "clarify", "disposition", "emergency", "closing")

# Assertions that count as "the patient has this now" (uncertain counts: when unsure, triage up).
POSITIVE_ASSERTIONS: frozenset[str] = frozenset({"present", "uncertain", "other_present", "answered_yes"})


class UrgencyLevel(IntEnum):
    """Five-level telephone-triage disposition ladder (1 = most urgent); see docs/clinical-rules.md."""

    CALL_EMERGENCY_SERVICES = 1
    EMERGENCY_DEPARTMENT_NOW = 2
    URGENT_CARE_HOURS = 3
    PRIMARY_CARE_DAYS = 4
    SELF_CARE = 5

    @property
    def disposition(self) -> str:
        return DISPOSITIONS[self]


DISPOSITIONS: dict[UrgencyLevel, str] = {
    UrgencyLevel.CALL_EMERGENCY_SERVICES: "call_emergency_services",
    UrgencyLevel.EMERGENCY_DEPARTMENT_NOW: "emergency_department_now",
    UrgencyLevel.URGENT_CARE_HOURS: "urgent_care_hours",
    UrgencyLevel.PRIMARY_CARE_DAYS: "primary_care_days",
    UrgencyLevel.SELF_CARE: "self_care",
}


@dataclass(frozen=True, slots=True)
class PatientContext:
    """What the caller (or the Django session) told us about who the patient is."""

    subject: Subject = "self"
    age_band: str | None = None
    pregnant: bool | None = None

    def __post_init__(self) -> None:
        if self.subject not in SUBJECTS:
            raise ValueError(f"subject must be one of {SUBJECTS}, not {self.subject!r}")
        if self.age_band is not None and self.age_band not in AGE_BANDS:
            raise ValueError(f"age_band must be None or one of {AGE_BANDS}, not {self.age_band!r}")
        if self.pregnant not in (None, True, False):
            raise ValueError("pregnant must be None, True or False")

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "age_band": self.age_band, "pregnant": self.pregnant}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule that fired (or was set aside), with the patient's words that fired it."""

    rule_id: str
    rule_version: str
    label: str
    evidence_text: str  # the patient's words (as heard) that fired the rule
    start: int  # character offsets of evidence_text inside its utterance (-1: not from speech)
    end: int
    assertion: str  # present / uncertain / other_present / answered_yes / pending / negated / ...
    explanation: str  # plain-language rationale plus how the words were read
    provenance: tuple[str, ...]  # titles of the public guidance the rule rests on
    level: int | None = None
    escalate: bool = False
    utterance: int = -1  # index of the utterance in the call (-1: current partial or answer-less)
    concepts: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # every phrase that contributed (combination rules have several)
    script: str | None = None
    complaint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "label": self.label,
            "evidence_text": self.evidence_text,
            "words": list(self.evidence or ((self.evidence_text,) if self.evidence_text else ())),
            "start": self.start,
            "end": self.end,
            "assertion": self.assertion,
            "explanation": self.explanation,
            "provenance": list(self.provenance),
            "level": self.level,
            "escalate": self.escalate,
            "utterance": self.utterance,
            "concepts": list(self.concepts),
            "script": self.script,
            "complaint": self.complaint,
        }


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the agent must say next. ``fixed`` texts are spoken verbatim, never through the LLM."""

    kind: str
    text: str
    fixed: bool = False
    rule_ids: tuple[str, ...] = ()
    question_id: str | None = None
    complaint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "fixed": self.fixed,
            "rule_ids": list(self.rule_ids),
            "question_id": self.question_id,
            "complaint": self.complaint,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """The rules' verdict on everything said so far. ``level`` is None while nothing is known."""

    level: UrgencyLevel | None
    disposition: str | None
    escalate: bool
    reasons: tuple[Finding, ...]
    next_question: Prompt | None
    ruleset_version: str
    complaint: str | None = None
    excluded: tuple[Finding, ...] = ()  # mentions set aside (negated, history, someone else, ...)
    withdrawn: tuple[Finding, ...] = ()  # partial-only escalations a later partial retracted
    facts: dict[str, Any] = field(default_factory=dict)
    on_partial: bool = False
    script: str | None = None  # id of the emergency script when escalated
    understood: bool = True  # False: nothing recognisable was said (ask again)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": int(self.level) if self.level is not None else None,
            "disposition": self.disposition,
            "escalate": self.escalate,
            "reasons": [f.to_dict() for f in self.reasons],
            "excluded": [f.to_dict() for f in self.excluded],
            "withdrawn": [f.to_dict() for f in self.withdrawn],
            "next_question": self.next_question.to_dict() if self.next_question else None,
            "ruleset_version": self.ruleset_version,
            "complaint": self.complaint,
            "facts": dict(self.facts),
            "on_partial": self.on_partial,
            "script": self.script,
            "understood": self.understood,
        }

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(f.rule_id for f in self.reasons)

    def explanation(self) -> str:
        """Human-readable account: the level, then each rule with the words that fired it."""
        lines: list[str] = []
        if self.level is None:
            lines.append("Urgency: not yet known (nothing recognisable has been said).")
        else:
            lines.append(f"Urgency: level {int(self.level)} — {self.disposition}")
        lines.append(f"Escalate to clinician: {'YES' if self.escalate else 'no'}")
        if self.complaint:
            lines.append(f"Chief complaint: {self.complaint}")
        facts = {k: v for k, v in self.facts.items() if v is not None}
        if facts:
            lines.append("Facts: " + ", ".join(f"{k}={v}" for k, v in sorted(facts.items())))
        lines.append(f"Rule set: {self.ruleset_version}")
        if self.reasons:
            lines.append("Rules that fired:")
            for f in self.reasons:
                words = "; ".join(f'"{w}"' for w in (f.evidence or (f.evidence_text,)) if w)
                lvl = f"L{f.level}" if f.level is not None else "L?"
                esc = " ESCALATE" if f.escalate else ""
                lines.append(f"  - [{lvl}{esc}] {f.rule_id} v{f.rule_version}: {f.label} ({f.assertion})")
                if words:
                    lines.append(f"      words: {words}")
                lines.append(f"      why: {f.explanation}")
                if f.provenance:
                    lines.append(f"      source: {'; '.join(f.provenance)}")
        if self.excluded:
            lines.append("Mentions set aside:")
            for f in self.excluded:
                lines.append(f'  - {f.label}: "{f.evidence_text}" ({f.assertion}) — {f.explanation}')
        if self.withdrawn:
            lines.append("Withdrawn (a later partial transcript revised the words):")
            for f in self.withdrawn:
                lines.append(f'  - {f.rule_id}: "{f.evidence_text}"')
        if self.next_question is not None:
            lines.append(f"Next ({self.next_question.kind}): {self.next_question.text}")
        return "\n".join(lines)
