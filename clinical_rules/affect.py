"""The affect rules' data (``rulesets/default/affect.yaml``): tag thresholds, lexical cues,
provenance and the discriminating question of each tag. Loaded and validated here; applied by
``voice/affect.py``. No Django, no model: plain data.

A tag never carries a level. ``attention`` says whether it raises the clinician-attention flag
(``true``, ``false`` or ``high``: only at the tag's high grade), ``question`` which protocol
question the interview asks once (``TriageInterview.queue_question``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .loader import DEFAULT_PATH, load_ruleset
from .ruleset import RuleSet
from .yamlsrc import load_yaml

AFFECT_FILE = "affect.yaml"
TAG_NAMES = ("breathless", "slow_slurred", "distress", "weak_voice")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")


class AffectRulesError(ValueError):
    """affect.yaml is invalid (unknown tag, question or provenance id, missing threshold)."""


@dataclass(frozen=True, slots=True)
class TagRule:
    name: str
    label: str
    attention: str  # "always", "never" or "high"
    question_id: str | None
    question: str | None  # the rule set's own text for question_id
    provenance: tuple[str, ...]  # titles
    params: dict[str, float] = field(default_factory=dict)
    cues: tuple[str, ...] = ()  # normalised (see normalise)
    negations: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AffectRules:
    version: str
    baseline_turns: int
    min_sounding_s: float
    tags: dict[str, TagRule]
    empathy_phrase: str

    def param(self, tag: str, name: str) -> float:
        return self.tags[tag].params[name]


def normalise(text: str) -> str:
    """Lower case, apostrophes dropped ("I'm" -> "im"), other punctuation to spaces: how
    cues are written and how the caller's words are matched against them."""
    return " ".join(_NON_WORD.sub(" ", (text or "").lower().replace("'", "").replace("’", "")).split())


_REQUIRED = {
    "breathless": ("min_pauses", "min_pauses_per_s", "max_syllables_per_phrase", "max_words_per_phrase"),
    "slow_slurred": ("max_rate_ratio", "max_articulation_rate", "min_voiced_fraction"),
    "distress": ("pitch_rise_st", "max_pitch_rise_st", "level_rise_db", "pitch_sd_ratio", "high_score"),
    "weak_voice": ("max_level_dbfs", "level_drop_db", "max_voiced_fraction"),
}


def load_affect_rules(ruleset: RuleSet | None = None, path: str | Path | None = None) -> AffectRules:
    """Load and validate affect.yaml against ``ruleset`` (questions and provenance must exist)."""
    rs = ruleset or load_ruleset()
    p = Path(path) if path is not None else DEFAULT_PATH / AFFECT_FILE
    data, problems = load_yaml(p)
    if problems:
        raise AffectRulesError("; ".join(f"{x.file}:{x.line}: {x.message}" for x in problems))
    if not isinstance(data, dict) or not isinstance(data.get("tags"), dict):
        raise AffectRulesError(f"{p}: expected a mapping with a 'tags' mapping")
    sources = {str(k): v for k, v in (data.get("sources") or {}).items()}

    def title(pid: str) -> str:
        if pid in sources:
            return str(sources[pid].get("title", pid))
        return rs.provenance[pid]["title"]

    tags: dict[str, TagRule] = {}
    for name, item in data["tags"].items():
        where = f"{p}: tag {name}"
        if name not in TAG_NAMES:
            raise AffectRulesError(f"{where}: unknown tag (known: {', '.join(TAG_NAMES)})")
        prov = tuple(str(x) for x in item.get("provenance") or ())
        unknown = [x for x in prov if x not in sources and x not in rs.provenance]
        if not prov or unknown:
            raise AffectRulesError(f"{where}: provenance missing or unknown ({', '.join(unknown) or 'none'})")
        qid = item.get("question")
        if qid is not None and str(qid) not in rs.questions:
            raise AffectRulesError(f"{where}: question {qid!r} is not in the rule set's protocols")
        attention = item.get("attention", False)
        attention = {True: "always", False: "never", "high": "high"}.get(attention)
        if attention is None:
            raise AffectRulesError(f"{where}: attention must be true, false or high")
        params: dict[str, float] = {}
        for key in _REQUIRED[name]:
            if not isinstance(item.get(key), int | float):
                raise AffectRulesError(f"{where}: '{key}' must be a number")
            params[key] = float(item[key])
        tags[name] = TagRule(
            name=name,
            label=str(item.get("label") or name),
            attention=attention,
            question_id=str(qid) if qid is not None else None,
            question=rs.questions[str(qid)].text if qid is not None else None,
            provenance=tuple(title(x) for x in prov),
            params=params,
            cues=tuple(normalise(c) for c in item.get("cues") or () if normalise(c)),
            negations=frozenset(normalise(w) for w in item.get("negations") or ()),
        )
    missing = [t for t in TAG_NAMES if t not in tags]
    if missing:
        raise AffectRulesError(f"{p}: tags missing: {', '.join(missing)}")
    phrase = str(data.get("empathy_phrase") or "").strip()
    if not phrase:
        raise AffectRulesError(f"{p}: empathy_phrase is required")
    return AffectRules(
        version=str(data.get("version", "")),
        baseline_turns=int(data.get("baseline_turns", 2)),
        min_sounding_s=float(data.get("min_sounding_s", 0.8)),
        tags=tags,
        empathy_phrase=phrase,
    )


@functools.cache
def default_affect_rules() -> AffectRules:
    """The default rule set's affect rules, loaded once per process."""
    return load_affect_rules()


def as_dict(rules: AffectRules) -> dict[str, Any]:
    """For tools and docs: the thresholds in force."""
    return {"version": rules.version, "tags": {n: dict(t.params) for n, t in rules.tags.items()}}
