"""Normalise streaming-ASR text into tokens that rules can match, keeping character offsets.

ASR output may have no punctuation, fillers ("um"), stutters ("my my chest"), apostrophes or not
("can't" / "cant") and known mishearings ("chess pain"). All of that is folded here, once, by
data from the rule set's lexicon (no clinical vocabulary lives in this module). Every normalised
token remembers the span of the original words it came from, so evidence is quoted as heard.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# words (letters, inner apostrophes), numbers (38.5), and the punctuation that ends a clause
_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+(?:['’`][^\W\d_]+)*|\.{2,}|…|[.!?;]", re.UNICODE)
_BOUNDARY = frozenset(".!?;")
_PAUSE = frozenset(("…",))  # an ellipsis is a pause, not the end of a sentence
_APOSTROPHES = str.maketrans("", "", "'’`")


@dataclass(frozen=True, slots=True)
class Tokens:
    """Normalised words of one utterance with their character spans in ``text``."""

    text: str
    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    sent_starts: tuple[bool, ...]  # True where a clause starts (first token, after . ! ? ;)

    def __len__(self) -> int:
        return len(self.words)

    def char_span(self, start: int, end: int) -> tuple[int, int]:
        """Character span covering tokens [start, end)."""
        if start >= end or not self.words:
            return (-1, -1)
        return self.spans[start][0], self.spans[end - 1][1]

    def quote(self, start: int, end: int) -> str:
        """The original words behind tokens [start, end), as the patient said them."""
        a, b = self.char_span(start, end)
        return self.text[a:b] if a >= 0 else ""


# "he's" -> "hes" (a contraction the rules use); "dad's" / "back's" -> "dad" / "back" (possessive
# or "has"/"is": the noun is what matters)
_KEEP_S = frozenset("he she it that there what who where here let".split())
_POSSESSIVE_RE = re.compile(r"^(.+?)['’`]s$")


_fold_cache: dict[str, str] = {}


def fold_word(word: str) -> str:
    """Lowercase, NFKC, no apostrophes: ``Can't`` -> ``cant``; ``38,5`` -> ``38.5``."""
    hit = _fold_cache.get(word)
    if hit is not None:
        return hit
    folded = _fold(word)
    if len(_fold_cache) > 50_000:  # bounded: garbage input must not grow memory forever
        _fold_cache.clear()
    _fold_cache[word] = folded
    return folded


def _fold(word: str) -> str:
    w = unicodedata.normalize("NFKC", word).lower()
    m = _POSSESSIVE_RE.match(w)
    if m and m.group(1) not in _KEEP_S:
        w = m.group(1)
    w = w.translate(_APOSTROPHES)
    if w[:1].isdigit():
        w = w.replace(",", ".")
    return w


# A dropped g ("achin'", "sweatin", "not answerin'") is read as the -ing word when the rule set
# itself uses that word (``Normaliser.know_ing_words``): "pain'", "skin", "aspirin" are left alone
# because no rule reads "paing". Speech recognisers write "aching"; this is for typed and
# transcribed dialect, with the apostrophe or without it.


class _Trie:
    """Longest-match lookup of token sequences (rewrites and filler phrases)."""

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root: dict = {}

    def add(self, seq: Sequence[str], value: object) -> None:
        node = self.root
        for w in seq:
            node = node.setdefault(w, {})
        node[None] = value

    def longest(self, words: Sequence[str], i: int) -> tuple[int, object] | None:
        node, best, j = self.root, None, i
        while j < len(words) and words[j] in node:
            node = node[words[j]]
            j += 1
            if None in node:
                best = (j, node[None])
        return best


class Normaliser:
    """Built once per rule set from its lexicon; ``__call__`` runs on every partial transcript."""

    def __init__(
        self,
        fillers: Iterable[str] = (),
        filler_phrases: Iterable[str] = (),
        rewrites: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        self.fillers = frozenset(fold_word(w) for w in fillers)
        self._filler_trie = _Trie()
        for phrase in filler_phrases:
            seq = self._raw_words(phrase)
            if seq:
                self._filler_trie.add(seq, True)
        self._ing_words: frozenset[str] = frozenset()  # -ing words the rules read (a dropped g)
        self._rewrite_trie = _Trie()
        self._single: dict[str, tuple[str, ...]] = {}
        pairs = rewrites.items() if isinstance(rewrites, Mapping) else rewrites
        for src, dst in pairs:
            s, d = self._raw_words(src), self._raw_words(dst)
            if s:
                self._rewrite_trie.add(s, d)
                if len(s) == 1:
                    self._single[s[0]] = d

    def know_ing_words(self, words: Iterable[str]) -> None:
        """The -ing words the rule set reads. A dropped g ("sweatin'", "feelin") becomes one of
        them; any other word ending in -in stays as it is."""
        self._ing_words = frozenset(w for w in words if len(w) > 4 and w.endswith("ing"))

    @staticmethod
    def _raw_words(text: str) -> tuple[str, ...]:
        return tuple(
            fold_word(t)
            for t in (m.group() for m in _TOKEN_RE.finditer(text))
            if t not in _BOUNDARY and t not in _PAUSE and not t.startswith("..")
        )

    def phrase(self, text: str) -> tuple[str, ...]:
        """Normalise a lexicon/pattern phrase exactly as speech is normalised (minus fillers)."""
        return self(text, drop_fillers=False).words

    def __call__(self, text: str, *, drop_fillers: bool = True) -> Tokens:
        text = text if isinstance(text, str) else str(text)
        raw: list[str] = []
        spans: list[tuple[int, int]] = []
        starts: list[bool] = []
        boundary = True
        for m in _TOKEN_RE.finditer(text):
            tok = m.group()
            if tok in _BOUNDARY:
                boundary = True
                continue
            if tok in _PAUSE or tok.startswith(".."):
                continue
            w = fold_word(tok)
            if w.endswith("in") and w + "g" in self._ing_words:
                w = w + "g"
            if drop_fillers and w in self.fillers:
                continue
            raw.append(w)
            spans.append(m.span())
            starts.append(boundary)
            boundary = False

        # filler phrases ("you know") and stutters ("my my chest") go before rewrites
        words1: list[str] = []
        spans1: list[tuple[int, int]] = []
        starts1: list[bool] = []
        i = 0
        filler_root = self._filler_trie.root
        while i < len(raw):
            if drop_fillers and raw[i] in filler_root:
                hit = self._filler_trie.longest(raw, i)
                if hit is not None:
                    if starts[i] and hit[0] < len(raw):
                        starts[hit[0]] = True
                    i = hit[0]
                    continue
            if words1 and raw[i] == words1[-1] and not starts[i]:
                spans1[-1] = (spans1[-1][0], spans[i][1])
                i += 1
                continue
            words1.append(raw[i])
            spans1.append(spans[i])
            starts1.append(starts[i])
            i += 1

        words2: list[str] = []
        spans2: list[tuple[int, int]] = []
        starts2: list[bool] = []
        i = 0
        rewrite_root = self._rewrite_trie.root
        while i < len(words1):
            hit = self._rewrite_trie.longest(words1, i) if words1[i] in rewrite_root else None
            if hit is None:
                words2.append(words1[i])
                spans2.append(spans1[i])
                starts2.append(starts1[i])
                i += 1
                continue
            j, dst = hit
            span = (spans1[i][0], spans1[j - 1][1])
            for k, w in enumerate(dst):  # type: ignore[arg-type]
                words2.append(w)
                spans2.append(span)
                starts2.append(starts1[i] and k == 0)
            i = j
        if starts2:
            starts2[0] = True
        return Tokens(text, tuple(words2), tuple(spans2), tuple(starts2))
