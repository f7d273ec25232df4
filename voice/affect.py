"""Affect and acoustic-sign tags for one turn, each with the feature values that fired it.

:class:`AffectTracker` (one per call) turns a turn's :class:`ParalinguisticFeatures` and its
words into an :class:`AffectReading`: the tags (``breathless``, ``slow_slurred``, ``distress``,
``weak_voice``), the caller's baseline they were compared with, and whether the reading raises
the clinician-attention flag. Thresholds, cues and provenance are data
(``clinical_rules/rulesets/default/affect.yaml``, loaded by ``clinical_rules.affect``).

What a tag may do: raise the attention flag, make the interview ask the tag's discriminating
question once, make the agent speak more calmly (and, for high distress, say the reviewed
empathy phrase). What it may not do: set, raise or lower an urgency level or a disposition; no
tag carries a level, and nothing here talks to the rules except through ``queue_question``.

Pure Python on already-measured numbers (microseconds): safe on the event loop. The rules'
data is imported when a tracker is made, not with this module: ``voice.pipeline`` imports this
and must stay importable (and light) without the clinical rules (docs/architecture.md).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from voice.paralinguistics import ParalinguisticFeatures

if TYPE_CHECKING:
    from voice.clinical import AffectRules, TagRule


def default_rules() -> AffectRules:
    """The default rule set's affect rules (clinical_rules affect.yaml), loaded once."""
    from voice.clinical import default_affect_rules

    return default_affect_rules()


@dataclass(frozen=True, slots=True)
class Evidence:
    feature: str  # a ParalinguisticFeatures field, a baseline comparison, or "words"
    value: float | str
    rule: str  # the threshold it crossed, e.g. "<= 2.9" or "-4.1 st vs baseline"

    def to_dict(self) -> dict[str, Any]:
        v = round(self.value, 2) if isinstance(self.value, float) else self.value
        return {"feature": self.feature, "value": v, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class AffectTag:
    name: str  # breathless / slow_slurred / distress / weak_voice
    label: str
    grade: str  # "present" or "high" (distress)
    attention: bool  # raises the clinician-attention flag
    question_id: str | None  # asked once when attention is raised
    evidence: tuple[Evidence, ...]
    provenance: tuple[str, ...]

    @property
    def explanation(self) -> str:
        fired = "; ".join(f"{e.feature} {e.to_dict()['value']} ({e.rule})" for e in self.evidence)
        return f"{self.label}{' (high)' if self.grade == 'high' else ''}: {fired}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.name,
            "label": self.label,
            "grade": self.grade,
            "attention": self.attention,
            "question_id": self.question_id,
            "evidence": [e.to_dict() for e in self.evidence],
            "explanation": self.explanation,
            "provenance": list(self.provenance),
            "level": None,  # a tag never carries a level
        }


@dataclass(frozen=True, slots=True)
class Baseline:
    """The caller's own first turns (medians)."""

    turns: int
    articulation_rate: float | None
    pitch_median_st: float | None
    pitch_sd_st: float | None
    level_dbfs: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "articulation_rate": _r(self.articulation_rate),
            "pitch_median_st": _r(self.pitch_median_st),
            "pitch_sd_st": _r(self.pitch_sd_st),
            "level_dbfs": _r(self.level_dbfs),
        }


@dataclass(frozen=True, slots=True)
class AffectReading:
    turn_id: int
    features: ParalinguisticFeatures | None  # None: audio not measured (budget, error)
    tags: tuple[AffectTag, ...]
    baseline: Baseline | None
    rules_version: str
    in_baseline: bool = False  # this turn became part of the caller's baseline

    @property
    def attention(self) -> bool:
        return any(t.attention for t in self.tags)

    @property
    def questions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.question_id for t in self.tags if t.attention and t.question_id))

    def tag(self, name: str) -> AffectTag | None:
        return next((t for t in self.tags if t.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn_id": self.turn_id,
            "tags": [t.to_dict() for t in self.tags],
            "attention": self.attention,
            "features": self.features.to_dict() if self.features is not None else None,
            "baseline": self.baseline.to_dict() if self.baseline is not None else None,
            "in_baseline": self.in_baseline,
            "rules_version": self.rules_version,
        }


def _r(v: float | None) -> float | None:
    return round(v, 2) if v is not None else None


# --- the tags ---------------------------------------------------------------------------


def lexical_cues(text: str, rule: TagRule) -> list[str]:
    """Distress cues in ``text`` (whole words), skipping a cue right after a negation."""
    from voice.clinical import normalise

    words = normalise(text).split()
    found: list[str] = []
    for cue in rule.cues:
        cw = cue.split()
        n = len(cw)
        for i in range(len(words) - n + 1):
            if words[i : i + n] == cw and not (set(words[max(0, i - 2) : i]) & rule.negations):
                found.append(cue)
                break
    # "please please" inside "please please hurry" also holds "please hurry": count distinct spans once
    return [c for c in found if not any(c != o and c in o for o in found)]


def _breathless(f: ParalinguisticFeatures, rule: TagRule) -> AffectTag | None:
    p = rule.params
    if f.pauses < p["min_pauses"] or f.pauses_per_s < p["min_pauses_per_s"]:
        return None
    if f.syllables_per_phrase > p["max_syllables_per_phrase"]:
        return None
    ev = [
        Evidence("pauses", float(f.pauses), f">= {p['min_pauses']:g}"),
        Evidence("pauses_per_s", f.pauses_per_s, f">= {p['min_pauses_per_s']:g}"),
        Evidence("syllables_per_phrase", f.syllables_per_phrase, f"<= {p['max_syllables_per_phrase']:g}"),
    ]
    wpp = f.words_per_phrase
    if wpp is not None:
        if wpp > p["max_words_per_phrase"]:
            return None
        ev.append(Evidence("words_per_phrase", wpp, f"<= {p['max_words_per_phrase']:g}"))
    return _tag(rule, ev)


def _slow_slurred(f: ParalinguisticFeatures, base: Baseline | None, rule: TagRule) -> AffectTag | None:
    p = rule.params
    if f.voiced_fraction < p["min_voiced_fraction"] or f.syllables < 3:
        return None
    ev = []
    if base is not None and base.articulation_rate:
        ratio = f.articulation_rate / base.articulation_rate
        if ratio <= p["max_rate_ratio"]:
            ev.append(
                Evidence(
                    "articulation_rate_vs_baseline",
                    ratio,
                    f"<= {p['max_rate_ratio']:g} x baseline {base.articulation_rate:.2f} syll/s",
                )
            )
    if f.articulation_rate <= p["max_articulation_rate"]:
        ev.append(
            Evidence("articulation_rate", f.articulation_rate, f"<= {p['max_articulation_rate']:g} syll/s")
        )
    if not ev:
        return None
    return _tag(rule, ev)


def _distress(
    f: ParalinguisticFeatures | None, text: str, base: Baseline | None, rule: TagRule
) -> AffectTag | None:
    p = rule.params
    ev: list[Evidence] = []
    score = 0
    cues = lexical_cues(text, rule)
    for cue in cues[:2]:
        ev.append(Evidence("words", cue, "distress cue"))
        score += 1
    if (
        f is not None
        and base is not None
        and f.pitch_median_st is not None
        and base.pitch_median_st is not None
    ):
        # A voice raised in pitch against the caller's own baseline is the acoustic cue; louder
        # or more variable speech adds to it but alone is not distress (it varies with the words).
        rise = f.pitch_median_st - base.pitch_median_st
        if p["pitch_rise_st"] <= rise <= p["max_pitch_rise_st"]:  # above an octave: a tracking error
            ev.append(
                Evidence(
                    "pitch_median_st_vs_baseline",
                    rise,
                    f"+{p['pitch_rise_st']:g} to +{p['max_pitch_rise_st']:g} st",
                )
            )
            score += 1
            arousal = []
            if base.level_dbfs is not None and f.level_dbfs is not None:
                up = f.level_dbfs - base.level_dbfs
                if up >= p["level_rise_db"]:
                    arousal.append(Evidence("level_dbfs_vs_baseline", up, f">= +{p['level_rise_db']:g} dB"))
            if base.pitch_sd_st and f.pitch_sd_st is not None:
                ratio = f.pitch_sd_st / base.pitch_sd_st
                if ratio >= p["pitch_sd_ratio"]:
                    arousal.append(Evidence("pitch_sd_vs_baseline", ratio, f">= {p['pitch_sd_ratio']:g} x"))
            if arousal:
                ev.extend(arousal)
                score += 1
    if score == 0:
        return None
    high = score >= p["high_score"]
    return _tag(rule, ev, grade="high" if high else "present", attention=rule.attention == "always" or high)


def _weak_voice(f: ParalinguisticFeatures, base: Baseline | None, rule: TagRule) -> AffectTag | None:
    p = rule.params
    ev = []
    if f.level_dbfs is not None and f.level_dbfs <= p["max_level_dbfs"]:
        ev.append(Evidence("level_dbfs", f.level_dbfs, f"<= {p['max_level_dbfs']:g} dBFS"))
    if base is not None and base.level_dbfs is not None and f.level_dbfs is not None:
        drop = base.level_dbfs - f.level_dbfs
        if drop >= p["level_drop_db"]:
            ev.append(Evidence("level_dbfs_vs_baseline", -drop, f"<= -{p['level_drop_db']:g} dB"))
    if f.voiced_fraction <= p["max_voiced_fraction"]:
        ev.append(
            Evidence("voiced_fraction", f.voiced_fraction, f"<= {p['max_voiced_fraction']:g} (whisper)")
        )
    return _tag(rule, ev) if ev else None


def _tag(
    rule: TagRule, ev: list[Evidence], *, grade: str = "present", attention: bool | None = None
) -> AffectTag:
    return AffectTag(
        name=rule.name,
        label=rule.label,
        grade=grade,
        attention=(rule.attention == "always") if attention is None else attention,
        question_id=rule.question_id,
        evidence=tuple(ev),
        provenance=rule.provenance,
    )


def tag_turn(
    features: ParalinguisticFeatures | None,
    text: str,
    baseline: Baseline | None,
    rules: AffectRules | None = None,
) -> tuple[AffectTag, ...]:
    """Every tag this turn fires. Acoustic tags need ``min_sounding_s`` of sounding speech;
    the lexical half of distress needs only the words."""
    rules = rules or default_rules()
    out: list[AffectTag | None] = []
    measurable = features is not None and features.sounding_s >= rules.min_sounding_s
    if measurable:
        out.append(_breathless(features, rules.tags["breathless"]))
        out.append(_slow_slurred(features, baseline, rules.tags["slow_slurred"]))
    out.append(_distress(features if measurable else None, text, baseline, rules.tags["distress"]))
    if measurable:
        out.append(_weak_voice(features, baseline, rules.tags["weak_voice"]))
    return tuple(t for t in out if t is not None)


# --- per call ---------------------------------------------------------------------------


@dataclass
class AffectTracker:
    """One call's baseline and readings. Not thread-safe: used from the call's event loop."""

    rules: AffectRules = field(default_factory=default_rules)
    readings: list[AffectReading] = field(default_factory=list)
    _base: list[ParalinguisticFeatures] = field(default_factory=list)

    @property
    def baseline(self) -> Baseline | None:
        if not self._base:
            return None

        def med(name: str) -> float | None:
            vals = [getattr(f, name) for f in self._base if getattr(f, name) is not None]
            return float(statistics.median(vals)) if vals else None

        rates = [f.articulation_rate for f in self._base if f.voiced_fraction >= 0.3 and f.syllables >= 3]
        return Baseline(
            turns=len(self._base),
            articulation_rate=float(statistics.median(rates)) if rates else None,
            pitch_median_st=med("pitch_median_st"),
            pitch_sd_st=med("pitch_sd_st"),
            level_dbfs=med("level_dbfs"),
        )

    @property
    def baseline_features(self) -> tuple[ParalinguisticFeatures, ...]:
        """The turns the baseline is made of (numbers only): what a resumed call continues from."""
        return tuple(self._base)

    def restore(self, features: list[ParalinguisticFeatures] | tuple[ParalinguisticFeatures, ...]) -> None:
        """A call resumed on another node (triage/resume.py): continue from the caller's baseline
        turns measured there, instead of taking the next turns (perhaps breathless) as normal."""
        if not self._base:
            self._base = list(features)[: self.rules.baseline_turns]

    @property
    def distress_high(self) -> bool:
        return any((t := r.tag("distress")) is not None and t.grade == "high" for r in self.readings)

    @property
    def attention_tags(self) -> tuple[str, ...]:
        """Tags that have raised attention in this call so far, first seen first."""
        return tuple(dict.fromkeys(t.name for r in self.readings for t in r.tags if t.attention))

    def observe(self, turn_id: int, features: ParalinguisticFeatures | None, text: str) -> AffectReading:
        base = self.baseline
        tags = tag_turn(features, text, base, self.rules)
        acoustic = any(t.name != "distress" or any(e.feature != "words" for e in t.evidence) for t in tags)
        joins = (
            features is not None
            and len(self._base) < self.rules.baseline_turns
            and features.sounding_s >= self.rules.min_sounding_s
            and not acoustic
        )
        if joins:
            self._base.append(features)
        reading = AffectReading(turn_id, features, tags, base, self.rules.version, in_baseline=joins)
        self.readings.append(reading)
        return reading


@dataclass(frozen=True, slots=True)
class AffectObserved:
    """Pipeline event (with the ``voice.events`` ones): a turn's affect reading, after its
    final transcript. ``questions_queued``: the attention tags' questions the policy accepted
    (each is asked once per call). Carries no level."""

    turn_id: int
    reading: AffectReading
    questions_queued: tuple[str, ...]
    t: float
