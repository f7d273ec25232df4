"""Analyse utterances into assertions, then evaluate rules into an Assessment.

Two stages, so the interview can cache the first: ``analyse(rs, text)`` turns one utterance into
concept mentions (with assertion context) and facts; ``evaluate(...)`` combines every analysis
and answer of the call with the patient context and runs the rules. Both are deterministic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import facts as F
from .ruleset import Condition, Rule, RuleSet
from .text import Tokens
from .types import POSITIVE_ASSERTIONS, Assessment, Finding, PatientContext, Prompt, UrgencyLevel

MAX_CHARS = 20_000  # longer input: the most recent words are kept (a transcript grows at its end)

# English function words: a transcript with none of these (and no recognised symptom) is treated
# as not understood (garbled or another language) and the caller is asked again.
_ENGLISH_HINTS = frozenset(
    "i im my me the a an and is it its to of in on have has had been was not no yes he she hes shes "
    "his her we they you this that with for at but can cant dont do does feel feeling got since "
    "hurts pain really very just like so".split()
)

ASSERTION_TEXT = {
    "present": "said as happening now",
    "uncertain": "said with uncertainty; counted, because when unsure we triage up",
    "other_present": "said about someone else, happening now; counted",
    "answered_yes": "confirmed in answer to a screening question",
    "negated": "denied",
    "hypothetical": "asked about hypothetically; not counted",
    "historical": "in the past; not counted as current",
    "family": "about someone else, in the past (family history); not counted",
    "pending": "provisional until the missing fact is known; counted to be safe",
}


@dataclass(frozen=True, slots=True)
class Mention:
    concept: str
    assertion: str
    text: str  # the patient's words, as heard
    char_start: int
    char_end: int
    tok_start: int = -1
    tok_end: int = -1
    cue: str = ""  # context cue that set the assertion ("no", "my father", "years ago")
    utterance: int = -1
    question_id: str | None = None


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    value: Any
    text: str
    utterance: int = -1
    question_id: str | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    tokens: Tokens
    mentions: tuple[Mention, ...]
    facts: tuple[Fact, ...]
    understood: bool

    def with_utterance(self, index: int) -> Analysis:
        return Analysis(
            self.text,
            self.tokens,
            tuple(_replace_utt(m, index) for m in self.mentions),
            tuple(Fact(f.name, f.value, f.text, index, f.question_id) for f in self.facts),
            self.understood,
        )


def _replace_utt(m: Mention, index: int) -> Mention:
    return Mention(m.concept, m.assertion, m.text, m.char_start, m.char_end, m.tok_start, m.tok_end, m.cue, index,
                   m.question_id)  # fmt: skip


# ---------------------------------------------------------------------------------- analysis
class _LRU:
    def __init__(self, size: int = 512):
        self.size = size
        self.data: OrderedDict[str, Analysis] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Analysis | None:
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key: str, value: Analysis) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_caches: dict[int, _LRU] = {}
_caches_lock = threading.Lock()


def _cache_for(rs: RuleSet) -> _LRU:
    with _caches_lock:
        cache = _caches.get(id(rs))
        if cache is None:
            cache = _caches[id(rs)] = _LRU()
        return cache


def analyse(rs: RuleSet, text: str) -> Analysis:
    """Concept mentions with assertion context, and facts, for one utterance. Cached per text."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_CHARS:
        text = text[-MAX_CHARS:]
    cache = _cache_for(rs)
    hit = cache.get(text)
    if hit is not None:
        return hit
    result = _analyse(rs, text)
    cache.put(text, result)
    return result


def _analyse(rs: RuleSet, text: str) -> Analysis:
    tokens = rs.normaliser(text)
    if not tokens.words:
        return Analysis(text, tokens, (), (), False)
    matches = rs.matcher(tokens)
    # the more specific reading wins where one concept's words lie inside another's
    positives = [m for m in matches if not m.negative]
    dropped: set[int] = set()
    for i, m in enumerate(positives):
        overrides = rs.concepts[m.key].overrides
        if not overrides:
            continue
        for j, o in enumerate(positives):
            if j != i and o.key in overrides and o.start >= m.start and o.end <= m.end:
                dropped.add(j)
    negatives = [m for m in matches if m.negative]
    # an explicit denial ("it doesn't go into my arm") outranks the positive reading of the
    # same words ("go into my arm"); a separate positive mention elsewhere still counts
    for i, m in enumerate(positives):
        if any(n.key == m.key and n.start < m.end and m.start < n.end for n in negatives):
            dropped.add(i)
    positives = [m for i, m in enumerate(positives) if i not in dropped]

    spans = sorted({(m.start, m.end) for m in positives})
    ctx = rs.context(tokens, spans) if spans else []
    ctx_of = dict(zip(spans, ctx, strict=True))

    mentions: list[Mention] = []
    for m in positives:
        cats = ctx_of.get((m.start, m.end), {})
        concept = rs.concepts[m.key]
        assertion, cue_span = _assertion(rs, cats, concept.family_history)
        if assertion == "present" and _echoed_then_denied(tokens, m.start, m.end):
            assertion, cue_span = "negated", (m.end, m.end + 1)
        if assertion == "historical" and concept.lasting:
            assertion, cue_span = "present", None  # the event was in the past; its state is now
        if concept.request and (
            assertion in ("historical", "hypothetical", "uncertain")
            or (assertion == "negated" and cue_span is not None and m.start - cue_span[1] > 1)
        ):
            # "I wondered if I need my review": a request is made now whatever its framing; only
            # a denial of the request itself ("I don't need a repeat") takes it back, not one of
            # symptoms said just before ("no symptoms at all, do I need checking")
            assertion, cue_span = "present", None
        cue = tokens.quote(*cue_span) if cue_span else ""
        a, b = tokens.char_span(m.start, m.end)
        mentions.append(Mention(m.key, assertion, tokens.quote(m.start, m.end), a, b, m.start, m.end, cue))
    for m in negatives:
        a, b = tokens.char_span(m.start, m.end)
        mentions.append(
            Mention(m.key, "negated", tokens.quote(m.start, m.end), a, b, m.start, m.end, "explicit denial")
        )

    mentions = _expand_implies(rs, mentions)
    found = _facts(rs, tokens, mentions, answer=False)
    understood = bool(mentions) or bool(found) or _looks_english(tokens)
    return Analysis(text, tokens, tuple(mentions), tuple(found), understood)


_ECHO_DENIALS = frozenset(("no", "nope", "nah", "not", "never", "none"))


def _echoed_then_denied(tokens: Tokens, start: int, end: int) -> bool:
    """The caller repeats the question and answers it: "Chest pain? No, no chest pain at all."

    True when the mention is (nearly) the whole of a clause that ends in a question mark and the
    next clause opens with a denial; a question the caller asks ("is it my heart? no idea") keeps
    more words before the mention, so it is left as it is.
    """
    if end >= len(tokens) or not tokens.sent_starts[end] or tokens.words[end] not in _ECHO_DENIALS:
        return False
    clause_start = start
    while clause_start > 0 and not tokens.sent_starts[clause_start]:
        clause_start -= 1
    if start - clause_start > 1:  # at most one word before it ("any chest pain?")
        return False
    between = tokens.text[tokens.spans[end - 1][1] : tokens.spans[end][0]]
    return "?" in between


def _assertion(
    rs: RuleSet, cats: Mapping[str, tuple[int, int]], family_history: bool
) -> tuple[str, tuple[int, int] | None]:
    by_bucket: dict[str, tuple[int, int]] = {}
    for name, span in cats.items():
        by_bucket.setdefault(rs.assertion_of.get(name, name), span)
    for bucket in ("negated", "hypothetical", "historical"):
        if bucket in by_bucket:
            return bucket, by_bucket[bucket]
    if "other_child" in by_bucket:
        return "other_present", by_bucket["other_child"]
    if "other" in by_bucket:
        # "my father had a stroke": a named condition in the past tense about an adult relative
        # reads as family history; symptoms and events ("my dad fell") are reported as now
        if family_history and "past" in by_bucket and "recent" not in by_bucket:
            return "family", by_bucket["other"]
        return "other_present", by_bucket["other"]
    if "uncertain" in by_bucket:
        return "uncertain", by_bucket["uncertain"]
    return "present", None


def _expand_implies(rs: RuleSet, mentions: list[Mention]) -> list[Mention]:
    out = list(mentions)
    seen = {(m.concept, m.char_start, m.char_end, m.assertion) for m in out}
    queue = [
        m
        for m in mentions
        if m.assertion in POSITIVE_ASSERTIONS or m.assertion in ("hypothetical", "historical", "family")
    ]
    while queue:
        m = queue.pop()
        for implied in rs.concepts[m.concept].implies:
            key = (implied, m.char_start, m.char_end, m.assertion)
            if key in seen:
                continue
            seen.add(key)
            new = Mention(implied, m.assertion, m.text, m.char_start, m.char_end, m.tok_start, m.tok_end, m.cue,
                          m.utterance, m.question_id)  # fmt: skip
            out.append(new)
            queue.append(new)
    return out


def _facts(rs: RuleSet, tokens: Tokens, mentions: Sequence[Mention], *, answer: bool) -> list[Fact]:
    out: list[Fact] = []
    for v in F.temperatures(tokens):
        out.append(Fact("temperature_c", v.value, tokens.quote(v.start, v.end)))
    rates = F.heart_rates(tokens)
    if rates:  # the fastest reading said: the one that matters for triage
        v = max(rates, key=lambda r: r.value)
        out.append(Fact("heart_rate", v.value, tokens.quote(v.start, v.end)))
    for v in F.ages(tokens, answer=answer):
        out.append(Fact("age_months", round(v.value, 2), tokens.quote(v.start, v.end)))
    for v in F.pain_scores(tokens, answer=answer):
        out.append(Fact("severity", v.value, tokens.quote(v.start, v.end)))
    for v in F.durations(tokens, rs.answers, answer=answer):
        out.append(Fact("duration_hours", round(v.value, 2), tokens.quote(v.start, v.end)))
    for m in mentions:
        for key, val in rs.concepts[m.concept].sets:
            if m.assertion in POSITIVE_ASSERTIONS:
                out.append(Fact(key, val, m.text))
            elif m.assertion == "negated" and isinstance(val, bool):
                out.append(Fact(key, not val, m.text))
    return out


def _looks_english(tokens: Tokens) -> bool:
    words = tokens.words
    hits = sum(1 for w in words if w in _ENGLISH_HINTS)
    return hits >= 1 and hits / max(1, len(words)) >= 0.15


def synthetic_analysis(
    rs: RuleSet, text: str, mentions: Iterable[Mention], found: Iterable[Fact]
) -> Analysis:
    tokens = rs.normaliser(text or "")
    return Analysis(text or "", tokens, tuple(mentions), tuple(found), True)


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class State:
    """Everything the rules may use: facts and concept mentions from the whole call."""

    positive: dict[str, list[Mention]] = field(default_factory=dict)
    negated: dict[str, list[Mention]] = field(default_factory=dict)
    excluded: dict[str, list[Mention]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    fact_text: dict[str, str] = field(default_factory=dict)
    understood: bool = False
    answered: frozenset[str] = frozenset()


def build_state(
    rs: RuleSet, context: PatientContext, analyses: Sequence[Analysis], answered: Iterable[str] = ()
) -> State:
    st = State(answered=frozenset(answered))
    subject_other = context.subject != "self"
    for an in analyses:
        st.understood = st.understood or an.understood
        for m in an.mentions:
            assertion = m.assertion
            if assertion == "family" and subject_other:
                # calling about someone else: "my dad had a stroke" is about the patient
                assertion = "other_present"
                m = Mention(m.concept, assertion, m.text, m.char_start, m.char_end, m.tok_start, m.tok_end, m.cue,
                            m.utterance, m.question_id)  # fmt: skip
            if assertion in POSITIVE_ASSERTIONS:
                st.positive.setdefault(m.concept, []).append(m)
            elif assertion == "negated":
                st.negated.setdefault(m.concept, []).append(m)
            else:
                st.excluded.setdefault(m.concept, []).append(m)
        for f in an.facts:  # later facts win (an answer corrects a statement)
            st.facts[f.name] = f.value
            st.fact_text[f.name] = f.text
            if f.name == "age_months":
                st.facts["age_band"] = F.age_band(float(f.value))
                st.fact_text["age_band"] = f.text
    # the patient context from the session form wins over anything inferred from speech
    if context.age_band is not None:
        st.facts["age_band"] = context.age_band
        st.fact_text["age_band"] = "(patient context)"
    if context.pregnant is not None:
        st.facts["pregnant"] = context.pregnant
        st.fact_text["pregnant"] = "(patient context)"
    st.facts["subject"] = context.subject
    # pregnancy said in words counts as the concept too (rules test pregnant: true either way)
    if st.facts.get("pregnant") is True and "pregnant" not in st.positive:
        st.positive["pregnant"] = [Mention("pregnant", "present", st.fact_text.get("pregnant", ""), -1, -1)]
    if st.facts.get("pregnant") is False:
        st.positive.pop("pregnant", None)
        st.negated.setdefault(
            "pregnant", [Mention("pregnant", "negated", st.fact_text.get("pregnant", ""), -1, -1)]
        )
    temp = st.facts.get("temperature_c")
    if temp is not None and temp >= 38.0 and "fever" not in st.positive:
        st.positive["fever"] = [Mention("fever", "present", st.fact_text.get("temperature_c", ""), -1, -1)]
    rate = st.facts.get("heart_rate")
    if rate is not None and rate >= FAST_PULSE_BPM.get(st.facts.get("age_band"), FAST_PULSE_BPM[None]):
        said = st.fact_text.get("heart_rate", "")
        for concept in ("fast_pulse", "palpitations"):
            st.positive.setdefault(concept, [Mention(concept, "present", said, -1, -1)])
    return st


# A measured resting pulse at or above these (beats per minute) is a "fast pulse": above the upper
# limit of normal for the age (APLS / Resuscitation Council reference ranges) by a margin that a
# crying or feverish child does not reach; unknown age is read as an adult.
FAST_PULSE_BPM: dict[str | None, float] = {
    "under_3_months": 200, "3_months_to_2_years": 190, "2_to_11": 160,
    "12_to_17": 140, "18_to_64": 140, "65_plus": 140, None: 140,
}  # fmt: skip


def _fact_ok(cond: Condition, st: State, *, skip: str | None = None) -> bool:
    f = st.facts
    if cond.age_band is not None and skip != "age_band":
        if f.get("age_band") not in cond.age_band:
            return False
    if cond.pregnant is not None and skip != "pregnant":
        if f.get("pregnant") is not cond.pregnant:
            return False
    if cond.subject is not None and f.get("subject") not in cond.subject:
        return False
    for name, key, op in (
        ("severity_gte", "severity", "ge"),
        ("duration_hours_gte", "duration_hours", "ge"),
        ("duration_hours_lt", "duration_hours", "lt"),
        ("temperature_gte", "temperature_c", "ge"),
        ("age_months_lt", "age_months", "lt"),
        ("age_months_gte", "age_months", "ge"),
    ):
        limit = getattr(cond, name)
        if limit is None:
            continue
        val = f.get(key)
        if val is None:
            return False
        if op == "ge" and not float(val) >= limit:
            return False
        if op == "lt" and not float(val) < limit:
            return False
    return True


def _concepts_ok(cond: Condition, st: State) -> list[Mention] | None:
    pos = st.positive
    evidence: list[Mention] = []
    for c in cond.all:
        if c not in pos:
            return None
        evidence.append(pos[c][0])
    for group in (cond.any, cond.and_any):
        if group:
            hit = [pos[c][0] for c in group if c in pos]
            if not hit:
                return None
            evidence.extend(hit)
    for c in cond.none:
        if c in pos:
            return None
    return evidence


def _finding(rs: RuleSet, rule: Rule, evidence: Sequence[Mention], st: State, *, level: int, assertion: str | None = None,
             note: str = "") -> Finding:  # fmt: skip
    first = evidence[0] if evidence else None
    words = tuple(dict.fromkeys(m.text for m in evidence if m.text))
    fact_bits = []
    c = rule.when
    for name, key in (("severity_gte", "severity"), ("duration_hours_gte", "duration_hours"),
                      ("temperature_gte", "temperature_c"), ("age_band", "age_band"), ("pregnant", "pregnant"),
                      ("age_months_gte", "age_months")):  # fmt: skip
        if getattr(c, name) is not None and key in st.facts:
            fact_bits.append(f'{key}={st.facts[key]} ("{st.fact_text.get(key, "")}")')
            if (
                st.fact_text.get(key)
                and st.fact_text[key] not in words
                and not st.fact_text[key].startswith("(")
            ):
                words = (*words, st.fact_text[key])
    assertion = assertion or (first.assertion if first else "present")
    how = []
    for m in evidence:
        desc = ASSERTION_TEXT.get(m.assertion, m.assertion)
        if m.question_id:
            q = rs.questions.get(m.question_id)
            how.append(f"'{m.text}' to \"{q.text if q else m.question_id}\"")
        elif m.cue and m.assertion != "present":
            how.append(f"'{m.text}' ({desc}: '{m.cue}')")
        else:
            how.append(f"'{m.text}' ({desc})")
    explanation = rule.rationale
    if how:
        explanation += " Heard: " + "; ".join(dict.fromkeys(how)) + "."
    if fact_bits:
        explanation += " Facts: " + ", ".join(fact_bits) + "."
    if note:
        explanation += " " + note
    return Finding(
        rule_id=rule.id,
        rule_version=rule.version,
        label=rule.label,
        evidence_text=first.text if first else (words[0] if words else ""),
        start=first.char_start if first else -1,
        end=first.char_end if first else -1,
        assertion=assertion,
        explanation=explanation,
        provenance=rs.provenance_titles(rule.provenance),
        level=level,
        escalate=rule.escalate and assertion != "pending",
        utterance=first.utterance if first else -1,
        concepts=tuple(dict.fromkeys(m.concept for m in evidence)),
        evidence=words,
        script=rule.script if rule.escalate and assertion != "pending" else None,
        complaint=rule.complaint,
    )


@dataclass
class Evaluation:
    findings: list[Finding]
    pending_questions: list[str]
    state: State
    cleared: list[str]


def evaluate_rules(rs: RuleSet, st: State) -> Evaluation:
    fired: list[tuple[Rule, Finding]] = []
    pending_q: list[str] = []
    cleared: list[str] = []
    modifiers: list[tuple[Rule, list[Mention]]] = []
    for rule in rs.rules:
        evidence = _concepts_ok(rule.when, st)
        if evidence is None:
            continue
        if rule.raise_by is not None:
            if _fact_ok(rule.when, st):
                modifiers.append((rule, evidence))
            continue
        if _fact_ok(rule.when, st):
            level = rule.level
            note = ""
            if rule.cleared_when_negated and all(
                c in st.negated and c not in st.positive for c in rule.cleared_when_negated
            ):
                level = rule.cleared_level or rule.level
                denied = ", ".join(rs.concepts[c].label.lower() for c in rule.cleared_when_negated)
                note = f"Urgency lowered to level {level} because the caller denied: {denied}."
                cleared.append(rule.id)
            fired.append((rule, _finding(rs, rule, evidence, st, level=level, note=note)))
            continue
        p = rule.pending
        if (
            p is not None
            and st.facts.get(p.when_unknown) is None
            and _fact_ok(rule.when, st, skip=p.when_unknown)
        ):
            trig = [st.positive[c][0] for c in p.any if c in st.positive]
            if trig:
                q = rs.questions[p.question]
                note = f"Provisional until we know: {q.text}"
                fired.append((rule, _finding(rs, rule, [*evidence, *trig], st, level=p.level, assertion="pending",
                                             note=note)))  # fmt: skip
                pending_q.append(p.question)
    suppressed = {s for rule, _f in fired for s in rule.suppresses}
    findings = [f for rule, f in fired if rule.id not in suppressed or rule.escalate]
    findings.extend(_apply_modifiers(rs, st, modifiers, findings))
    return Evaluation(findings, list(dict.fromkeys(pending_q)), st, cleared)


def _apply_modifiers(
    rs: RuleSet, st: State, modifiers: Sequence[tuple[Rule, list[Mention]]], findings: Sequence[Finding]
) -> list[Finding]:
    """High-risk modifiers: raise the level the complaint rules gave by ``raise_by``, capped at the
    modifier's ``level``. They only ever raise: nothing fires when no complaint rule fired (the
    modifier's own conditions name the complaints it applies to) or when the level is already at
    or above the cap. Modifiers do not stack (each raises from the complaint rules' level)."""
    base = min((f.level for f in findings if f.level is not None), default=None)
    if base is None:
        return []
    base_rules = [rs.rules_by_id.get(f.rule_id) for f in findings if f.level == base]
    out = []
    for rule, evidence in modifiers:
        level = max(rule.level, base - int(rule.raise_by or 0))
        if level >= base:
            continue
        if base_rules and all(r is not None and _graded_with(r, rule, st) for r in base_rules):
            continue  # the complaint rule's own level already allows for this risk: no double count
        note = f"Raised from level {base} to level {level} by this high-risk modifier."
        out.append(_finding(rs, rule, evidence, st, level=level, note=note))
    return out


def _graded_with(rule: Rule, modifier: Rule, st: State) -> bool:
    """``rule`` fired only because of the modifier's own risk factor (pregnancy, an age band, a
    concept the modifier requires), so its level was set with that risk in mind: URG-GU-002 sends
    urinary symptoms in pregnancy to level 3, and the pregnancy modifier must not raise that again.
    A rule that fired for another reason too (fever as well as pregnancy) is not graded with it."""
    mod, cond = modifier.when, rule.when
    risk = set(mod.all)
    if mod.pregnant:
        risk.add("pregnant")
        if cond.pregnant:
            return True
    if mod.age_band is not None and cond.age_band is not None and set(cond.age_band) <= set(mod.age_band):
        return True  # a rule for exactly this age group (not one that merely includes it)
    if risk & set(cond.all):
        return True
    for group in (cond.any, cond.and_any):
        present = [c for c in group if c in st.positive]
        if present and all(c in risk for c in present):
            return True
    return False


def excluded_findings(rs: RuleSet, st: State) -> list[Finding]:
    """Mentions set aside (negated, hypothetical, history, family) - shown in explanations."""
    out = []
    for bucket in (st.negated, st.excluded):
        for concept, mentions in bucket.items():
            if concept in st.positive:
                continue
            m = mentions[0]
            desc = ASSERTION_TEXT.get(m.assertion, m.assertion)
            cue = f" (cue: '{m.cue}')" if m.cue else ""
            if m.question_id:
                q = rs.questions.get(m.question_id)
                cue = f' (answer to "{q.text if q else m.question_id}")'
            out.append(
                Finding(
                    rule_id=f"concept:{concept}",
                    rule_version=rs.version,
                    label=rs.concepts[concept].label if concept in rs.concepts else concept,
                    evidence_text=m.text,
                    start=m.char_start,
                    end=m.char_end,
                    assertion=m.assertion,
                    explanation=f"{desc}{cue}",
                    provenance=(),
                    utterance=m.utterance,
                    concepts=(concept,),
                    evidence=(m.text,) if m.text else (),
                )
            )
    return out


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.level or 9, not f.escalate, f.utterance, f.start, f.rule_id))


def chief_complaint(rs: RuleSet, findings: Sequence[Finding], st: State) -> str | None:
    ranked = sort_findings(f for f in findings if f.complaint)
    if ranked:
        return ranked[0].complaint
    earliest: tuple[int, int, str] | None = None
    for concept, mentions in st.positive.items():
        comp = rs.complaint_of_concept.get(concept)
        if comp:
            m = mentions[0]
            key = (m.utterance, m.char_start, comp)
            if earliest is None or key < earliest:
                earliest = key
    return earliest[2] if earliest else None


def emergency_prompt(rs: RuleSet, findings: Sequence[Finding]) -> Prompt:
    esc = sort_findings(f for f in findings if f.escalate)
    script_id = next((f.script for f in esc if f.script in rs.scripts), "emergency_generic")
    script = rs.scripts[script_id]
    return Prompt(
        kind="emergency",
        text=script.text,
        fixed=True,
        rule_ids=tuple(dict.fromkeys(f.rule_id for f in esc)),
        question_id=None,
        complaint=esc[0].complaint if esc else None,
    )


def question_prompt(rs: RuleSet, qid: str, complaint: str | None, rule_ids: tuple[str, ...] = ()) -> Prompt:
    q = rs.questions[qid]
    return Prompt(
        kind="question", text=q.text, fixed=False, rule_ids=rule_ids, question_id=qid, complaint=complaint
    )


def disposition_prompt(rs: RuleSet, level: int, findings: Sequence[Finding], complaint: str | None) -> Prompt:
    if level <= 1:
        return emergency_prompt(rs, findings)
    return Prompt(
        kind="disposition",
        text=rs.dispositions[level],
        fixed=True,
        rule_ids=tuple(dict.fromkeys(f.rule_id for f in sort_findings(findings))),
        question_id=None,
        complaint=complaint,
    )


def clarify_prompt(rs: RuleSet) -> Prompt:
    return Prompt(kind="clarify", text=rs.texts["clarify"], fixed=False)


def question_known(rs: RuleSet, qid: str, st: State) -> bool:
    """Already answered, or already said in the caller's own words."""
    if qid in st.answered:
        return True
    q = rs.questions[qid]
    if q.type == "yes_no":
        if q.concept:
            return q.concept in st.positive or q.concept in st.negated
        if q.fact:
            return st.facts.get(q.fact) is not None
    if q.type == "age":
        return st.facts.get("age_band") is not None
    if q.type == "scale":
        return st.facts.get("severity") is not None
    if q.type == "duration":
        return st.facts.get("duration_hours") is not None
    return False


def question_applies(rs: RuleSet, qid: str, st: State) -> bool:
    q = rs.questions[qid]
    for key, allowed in q.ask_if:
        val = st.facts.get(key)
        val = "unknown" if val is None else str(val).lower()
        if val not in allowed:
            return False
    return True


def next_protocol_question(rs: RuleSet, complaint: str | None, st: State, asked: Sequence[str] = (),
                           limit: int | None = None) -> str | None:  # fmt: skip
    if complaint is None or complaint not in rs.complaints:
        return None
    asked_count = sum(1 for q in asked if q in rs.complaints[complaint].questions)
    if limit is not None and asked_count >= limit:
        return None
    for qid in rs.complaints[complaint].questions:
        if qid in asked or question_known(rs, qid, st) or not question_applies(rs, qid, st):
            continue
        return qid
    return None


def build_assessment(
    rs: RuleSet,
    context: PatientContext,
    analyses: Sequence[Analysis],
    *,
    answered: Iterable[str] = (),
    asked: Sequence[str] = (),
    on_partial: bool = False,
    extra_findings: Sequence[Finding] = (),
    withdrawn: Sequence[Finding] = (),
    next_question: Prompt | None | bool = True,
) -> tuple[Assessment, Evaluation]:
    st = build_state(rs, context, analyses, answered)
    ev = evaluate_rules(rs, st)
    have = {f.rule_id for f in ev.findings}
    findings = sort_findings([*ev.findings, *(f for f in extra_findings if f.rule_id not in have)])
    level = min((f.level for f in findings if f.level is not None), default=None)
    escalate = any(f.escalate for f in findings)
    complaint = chief_complaint(rs, findings, st)
    script = None
    if escalate:
        esc = sort_findings(f for f in findings if f.escalate)
        script = next((f.script for f in esc if f.script), None)
    if next_question is True:
        if escalate:
            nq: Prompt | None = emergency_prompt(rs, findings)
        elif ev.pending_questions:
            nq = question_prompt(rs, ev.pending_questions[0], complaint, tuple(f.rule_id for f in findings))
        elif complaint is not None:
            qid = next_protocol_question(rs, complaint, st, asked, rs.max_questions)
            nq = (question_prompt(rs, qid, complaint) if qid else
                  disposition_prompt(rs, level, findings, complaint) if level else None)  # fmt: skip
        elif level is not None:
            nq = disposition_prompt(rs, level, findings, complaint)
        else:
            # understood but unplaced: the universal first-order screen comes before "rephrase"
            qid = next_protocol_question(rs, "universal_screen", st, asked) if st.understood else None
            nq = question_prompt(rs, qid, None) if qid else clarify_prompt(rs)
    else:
        nq = next_question or None
    facts = {k: st.facts.get(k) for k in ("age_band", "age_months", "pregnant", "subject", "severity",
                                          "duration_hours", "temperature_c", "heart_rate")}  # fmt: skip
    assessment = Assessment(
        level=UrgencyLevel(level) if level is not None else None,
        disposition=UrgencyLevel(level).disposition if level is not None else None,
        escalate=escalate,
        reasons=tuple(findings),
        next_question=nq,
        ruleset_version=rs.version,
        complaint=complaint,
        excluded=tuple(excluded_findings(rs, st)),
        withdrawn=tuple(withdrawn),
        facts=facts,
        on_partial=on_partial,
        script=script,
        understood=st.understood or bool(findings),
    )
    return assessment, ev
