"""A small token-pattern language for rule files, and a fast matcher for it.

Patterns live in the YAML rule data, e.g. ``"@CHEST *2 @PAIN"`` or ``"(cant|cannot) breathe"``:

* ``word``            one normalised token (lowercase, no apostrophes: write ``cant``)
* ``a|b|c``           one of several single tokens
* ``(short of breath|breathless)``  one of several phrases; groups nest and may hold
  ``@NAME`` and optional parts: ``(my (left|right)? arm|@LIMB)``
* ``@NAME``           a term list from the lexicon (single words or phrases)
* ``X?``              the element is optional (any of the forms above)
* ``*`` / ``*N``      a gap of 0..N arbitrary tokens (default 3); never first or last

Why not spaCy's ``Matcher``: with ~1,000 patterns it costs ~90 ns per pattern per token (about
9 ms for 100 words here), over the 5 ms budget for a whole assessment. This matcher indexes
patterns by their first token, so a 100-word partial costs a few hundred microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .text import Tokens

DEFAULT_GAP = 3
MAX_GAP = 8
_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_WORD_RE = re.compile(r"^[\w'’.-]+$", re.UNICODE)


class PatternError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Slot:
    alts: tuple[tuple[str, ...], ...]
    optional: bool = False
    # lookup tables so matching a slot is one set/dict probe, not a loop over its alternatives
    singles: frozenset[str] = frozenset()
    multi: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()

    @staticmethod
    def of(alts: tuple[tuple[str, ...], ...], optional: bool = False) -> Slot:
        singles = frozenset(a[0] for a in alts if len(a) == 1)
        multi: dict[str, list[tuple[str, ...]]] = {}
        for a in alts:
            if len(a) > 1:
                multi.setdefault(a[0], []).append(a)
        return Slot(alts, optional, singles, tuple((k, tuple(v)) for k, v in multi.items()))


@dataclass(frozen=True, slots=True)
class Gap:
    n: int


Element = Slot | Gap


_LEX_RE = re.compile(r"\s+|[()|?]|@[A-Za-z0-9_]+|\*\d*|[^\s()|?]+")
MAX_EXPANSIONS = 5000


class _Parser:
    """Recursive descent over the pattern string; groups expand to sets of token sequences."""

    def __init__(self, pattern: str, terms, phrase):
        self.toks = [t for t in _LEX_RE.findall(pattern.strip())]
        self.i = 0
        self.terms = terms
        self.phrase = phrase

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def skip_space(self) -> None:
        while (t := self.peek()) is not None and t.isspace():
            self.i += 1

    def elements(self) -> list[Element]:
        out: list[Element] = []
        while True:
            self.skip_space()
            tok = self.peek()
            if tok is None:
                return out
            if tok.startswith("*"):
                self.take()
                num = tok[1:]
                n = int(num) if num else DEFAULT_GAP
                if not 1 <= n <= MAX_GAP:
                    raise PatternError(f"gap {tok!r} must be between *1 and *{MAX_GAP}")
                out.append(Gap(n))
                continue
            if tok in (")", "|", "?"):
                raise PatternError(f"unexpected {tok!r}")
            alts = self.atom(top=True)
            optional = self.peek() == "?"
            if optional:
                self.take()
            out.append(Slot.of(tuple(dict.fromkeys(alts)), optional))

    def atom(self, top: bool = False) -> list[tuple[str, ...]]:
        tok = self.take()
        if tok == "(":
            alts = self.alternatives()
            if self.peek() != ")":
                raise PatternError("unbalanced '('")
            self.take()
            return alts
        if tok.startswith("@"):
            name = tok[1:]
            if not _NAME_RE.match(name):
                raise PatternError(f"bad term name {tok!r} (use @UPPER_CASE)")
            if name not in self.terms:
                raise PatternError(f"unknown term list @{name}")
            return list(self.terms[name])
        words = [tok]
        while top and self.peek() == "|":  # a|b|c at top level: single-word alternatives
            self.take()
            nxt = self.peek()
            if nxt is None or nxt in ("(", ")", "|", "?") or nxt.isspace():
                raise PatternError("empty alternative")
            words.append(self.take())
        return [self.word(w) for w in words]

    def word(self, w: str) -> tuple[str, ...]:
        if not _WORD_RE.match(w):
            raise PatternError(f"bad word {w!r}")
        seq = self.phrase(w)
        if not seq:
            raise PatternError(f"word {w!r} normalises to nothing (a filler?)")
        return seq

    def alternatives(self) -> list[tuple[str, ...]]:
        alts: list[tuple[str, ...]] = []
        while True:
            alts.extend(self.sequence())
            if len(alts) > MAX_EXPANSIONS:
                raise PatternError("group expands to too many phrases")
            if self.peek() == "|":
                self.take()
                continue
            return alts

    def sequence(self) -> list[tuple[str, ...]]:
        seqs: list[tuple[str, ...]] = [()]
        while True:
            self.skip_space()
            tok = self.peek()
            if tok is None or tok in (")", "|"):
                break
            if tok == "?" or tok.startswith("*"):
                raise PatternError(f"{tok!r} is not allowed here")
            items = self.atom()
            if self.peek() == "?":
                self.take()
                items = [*items, ()]
            seqs = [a + b for a in seqs for b in items]
            if len(seqs) > MAX_EXPANSIONS:
                raise PatternError("group expands to too many phrases")
        if seqs == [()]:
            raise PatternError("empty alternative")
        # normalise multi-word phrases as a whole (rewrites such as "can not" -> "cant")
        return [self.phrase(" ".join(s)) or s for s in seqs]


def parse_pattern(
    pattern: str,
    terms: Mapping[str, Sequence[tuple[str, ...]]],
    phrase: Callable[[str], tuple[str, ...]],
) -> tuple[Element, ...]:
    """Parse one pattern string; ``phrase`` normalises words exactly as speech is normalised."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError("empty pattern")
    if pattern.count("(") != pattern.count(")"):
        raise PatternError("unbalanced parentheses")
    elements = _Parser(pattern, terms, phrase).elements()
    if not elements:
        raise PatternError("empty pattern")
    if isinstance(elements[0], Gap) or isinstance(elements[-1], Gap):
        raise PatternError("a pattern cannot start or end with a gap")
    if all(isinstance(e, Gap) or e.optional for e in elements):
        raise PatternError("a pattern needs at least one required word")
    for a, b in zip(elements, elements[1:], strict=False):
        if isinstance(a, Gap) and isinstance(b, Gap):
            raise PatternError("two gaps in a row")
    for e in elements:
        if isinstance(e, Slot) and any(not alt for alt in e.alts):
            raise PatternError("an alternative is empty; use ? for optional words")
    return tuple(elements)


def _variants(elements: tuple[Element, ...]) -> list[tuple[Element, ...]]:
    """Drop optional leading slots (and a gap after them): a match starts at the first required
    word. Detection is the same; it saves trying every "my"/"the" in an utterance as a start."""
    els = elements
    while els and (isinstance(els[0], Gap) or els[0].optional):
        els = els[1:]
    return [els] if els else []


def _match_from(els: tuple[Element, ...], k: int, words: tuple[str, ...], j: int, limit: int) -> int:
    """Longest end of ``els[k:]`` matched at token ``j`` (exclusive ``limit``); -1 if none."""
    if k == len(els):
        return j
    e = els[k]
    best = -1
    if isinstance(e, Gap):
        for g in range(0, e.n + 1):
            if j + g > limit:
                break
            r = _match_from(els, k + 1, words, j + g, limit)
            if r > best:
                best = r
        return best
    if e.optional:
        best = _match_from(els, k + 1, words, j, limit)
    if j >= limit:
        return best
    w = words[j]
    if w in e.singles:
        r = _match_from(els, k + 1, words, j + 1, limit)
        if r > best:
            best = r
    for first, alts in e.multi:
        if first != w:
            continue
        for alt in alts:
            n = len(alt)
            if j + n <= limit and words[j : j + n] == alt:
                r = _match_from(els, k + 1, words, j + n, limit)
                if r > best:
                    best = r
    return best


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    start: int
    end: int
    negative: bool  # matched one of the concept's explicit-denial patterns


class PatternMatcher:
    """All concept patterns of a rule set, indexed by first token."""

    def __init__(self) -> None:
        # first word -> (concept, negative?, elements, first words of each later required slot)
        self._index: dict[str, list[tuple[str, bool, tuple[Element, ...], tuple[frozenset[str], ...]]]] = {}
        self.count = 0

    def add(self, key: str, elements: tuple[Element, ...], negative: bool = False) -> None:
        for variant in _variants(elements):
            head = variant[0]
            assert isinstance(head, Slot)
            # a cheap pre-check: every later required slot must have a word in the utterance
            needs = tuple(
                frozenset(alt[0] for alt in e.alts)
                for e in variant[1:]
                if isinstance(e, Slot) and not e.optional
            )
            for first in {alt[0] for alt in head.alts}:
                self._index.setdefault(first, []).append((key, negative, variant, needs))
        self.count += 1

    def __call__(self, tokens: Tokens) -> list[Match]:
        words = tokens.words
        n = len(words)
        # a pattern never runs across a clause boundary that punctuation gave us
        limits = [n] * n
        nxt = n
        for i in range(n - 1, -1, -1):
            limits[i] = nxt
            if tokens.sent_starts[i]:
                nxt = i
        best: dict[tuple[str, bool, int], int] = {}
        index = self._index
        present = frozenset(words)
        for i, w in enumerate(words):
            cands = index.get(w)
            if not cands:
                continue
            limit = limits[i]
            for key, negative, els, needs in cands:
                if needs and any(n.isdisjoint(present) for n in needs):
                    continue
                end = _match_from(els, 0, words, i, limit)
                if end > i:
                    k = (key, negative, i)
                    if end > best.get(k, -1):
                        best[k] = end
        # per concept and polarity keep the longest non-overlapping matches
        by_key: dict[tuple[str, bool], list[tuple[int, int]]] = {}
        for (key, negative, start), end in best.items():
            by_key.setdefault((key, negative), []).append((start, end))
        out: list[Match] = []
        for (key, negative), spans in by_key.items():
            spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
            taken: list[tuple[int, int]] = []
            for s, e in spans:
                if all(e <= ts or s >= te for ts, te in taken):
                    taken.append((s, e))
            out.extend(Match(key, s, e, negative) for s, e in taken)
        out.sort(key=lambda m: (m.start, m.end, m.key))
        return out
