"""Turn a free-speech answer to a protocol question into concept assertions and facts."""

from __future__ import annotations

from dataclasses import dataclass

from . import facts as F
from .engine import Analysis, Fact, Mention
from .ruleset import Question, RuleSet
from .types import POSITIVE_ASSERTIONS


@dataclass(frozen=True, slots=True)
class AnswerResult:
    question_id: str
    status: str  # "ok" | "unsure" | "unparsed"
    value: object  # "yes"/"no"/"unsure", a number, or None
    mentions: tuple[Mention, ...] = ()
    facts: tuple[Fact, ...] = ()


def parse_answer(
    rs: RuleSet, q: Question, text: str, analysis: Analysis, *, final_try: bool = False
) -> AnswerResult:
    """Parse ``text`` as the answer to ``q``. ``final_try``: an unsure yes/no counts as uncertain-yes
    (when unsure, triage up) instead of asking again."""
    text = text or ""
    raw = rs.normaliser(text, drop_fillers=False)
    if q.type == "yes_no":
        return _yes_no(rs, q, text, raw, analysis, final_try)
    if q.type == "scale":
        vals = F.pain_scores(rs.normaliser(text), answer=True)
        if not vals:
            return AnswerResult(q.id, "unparsed", None)
        v = max(vals, key=lambda x: x.value)  # "eight or nine" -> nine
        return AnswerResult(q.id, "ok", v.value, facts=(Fact("severity", v.value, text, question_id=q.id),))
    if q.type == "duration":
        vals = F.durations(rs.normaliser(text), rs.answers, answer=True)
        if not vals:
            return AnswerResult(q.id, "unparsed", None)
        hours = max(v.value for v in vals)
        return AnswerResult(
            q.id, "ok", hours, facts=(Fact("duration_hours", round(hours, 2), text, question_id=q.id),)
        )
    if q.type == "age":
        for f in analysis.facts:  # "newborn" and similar words set the band directly
            if f.name == "age_band":
                return AnswerResult(
                    q.id, "ok", f.value, facts=(Fact("age_band", f.value, text, question_id=q.id),)
                )
        vals = F.ages(rs.normaliser(text), answer=True)
        if not vals:
            return AnswerResult(q.id, "unparsed", None)
        months = vals[0].value
        return AnswerResult(
            q.id,
            "ok",
            months,
            facts=(
                Fact("age_months", round(months, 2), text, question_id=q.id),
                Fact("age_band", F.age_band(months), text, question_id=q.id),
            ),
        )
    return AnswerResult(q.id, "unparsed", None)


def _yes_no(rs: RuleSet, q: Question, text: str, raw, analysis: Analysis, final_try: bool) -> AnswerResult:
    said = F.yes_no(raw, rs.answers, rs.fillers)
    kind = said[0] if said else None
    # the caller's own words about the concept override a bare yes/no ("no, but my arm is numb")
    if q.concept:
        own = [m for m in analysis.mentions if m.concept == q.concept]
        if any(m.assertion in POSITIVE_ASSERTIONS for m in own):
            kind = "no" if q.inverted else "yes"
        elif own and all(m.assertion == "negated" for m in own) and kind is None:
            kind = "yes" if q.inverted else "no"
    if kind is None:
        return AnswerResult(q.id, "unparsed", None)
    if kind == "unsure" and not final_try:
        return AnswerResult(q.id, "unsure", "unsure")
    quote = text.strip()[:120]
    if q.fact == "pregnant":
        value = kind != "no"  # "not sure" could be pregnant: triage up
        return AnswerResult(q.id, "ok", kind, facts=(Fact("pregnant", value, quote, question_id=q.id),))
    assert q.concept is not None
    positive = (kind == "yes") != q.inverted if kind != "unsure" else True
    if kind == "unsure":
        assertion = "uncertain"
    else:
        assertion = "answered_yes" if positive else "negated"
    m = Mention(q.concept, assertion, quote, -1, -1, question_id=q.id)
    mentions = [m]
    if positive:
        for implied in rs.concepts[q.concept].implies:
            mentions.append(Mention(implied, assertion, quote, -1, -1, question_id=q.id))
    found = []
    for key, val in rs.concepts[q.concept].sets:
        if positive:
            found.append(Fact(key, val, quote, question_id=q.id))
        elif isinstance(val, bool):
            found.append(Fact(key, not val, quote, question_id=q.id))
    return AnswerResult(q.id, "ok", kind, tuple(mentions), tuple(found))
