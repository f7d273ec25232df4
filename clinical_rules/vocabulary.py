"""The rule set's own clinical words, for biasing speech recognition towards them.

Whisper's small models turn rare clinical words into common ones ("chest pain" -> "just pain",
"seizure" -> "see sure"), and a red flag lost in ASR never reaches the rules. The words that
matter are the ones the urgent rules (level 1-2) listen for, so the list is built from the rule
set itself: the words of the labels of every urgent rule and of the concepts it needs (the
patterns' words are mostly everyday phrasing), ranked by how many labels use them. Everyday
words are dropped (Whisper already knows them; a prompt full of them only costs decoder time).

    from clinical_rules import vocabulary
    vocabulary()            # ["pain", "breathing", "bleeding", "blood", "chest", ...]
"""

from __future__ import annotations

import functools
import re
from collections import Counter

from spacy.lang.en.stop_words import STOP_WORDS  # a word list only: no model is loaded

from .loader import load_ruleset
from .ruleset import RuleSet

DEFAULT_LIMIT = 48  # ~100 tokens: leaves over half of Whisper's 223-token prompt to the caller's words

_WORD = re.compile(r"[a-z][a-z]+")
# Words of the labels' own register ("Caller describes ... signs"), not what callers say.
_META = frozenset(
    """caller callers described describes says named known sign signs features feature symptoms
    symptom screening possible time later moment area system usual took came gone went needing
    aged months weeks hours minutes days""".split()
)


@functools.cache
def _default_words() -> tuple[str, ...]:
    return tuple(ranked_words(load_ruleset()))


def vocabulary(ruleset: RuleSet | None = None, *, limit: int = DEFAULT_LIMIT) -> list[str]:
    """The ``limit`` clinical words urgent rules depend on most, most used first."""
    words = _default_words() if ruleset is None else tuple(ranked_words(ruleset))
    return list(words[: max(0, limit)])


def ranked_words(rs: RuleSet) -> list[str]:
    """The words of the urgent rules' labels and of their concepts' labels (clinicians' words for
    what callers describe), by how many labels use them; everyday words dropped."""
    concepts: set[str] = set()
    labels: list[str] = []
    for rule in rs.rules:
        if rule.level <= 2:
            when = rule.when
            concepts.update(when.all + when.any + when.and_any)
            labels.append(rule.label)
    for cid in sorted(concepts):
        c = rs.concepts.get(cid)
        if c is not None and not c.answer_only:
            labels.append(c.label)
    counts: Counter[str] = Counter()
    for label in labels:
        counts.update(
            {
                w
                for w in _WORD.findall(label.lower())
                if len(w) >= 4 and w not in STOP_WORDS and w not in _META
            }
        )
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
