"""Split a token stream into speakable clauses as early as it is safe to.

TTS speaks whole clauses, so the first clause must leave as soon as it is complete; but a
boundary is only *confirmed* by the whitespace after it (or the end of the stream), which is
what keeps "3.5", "10:30", "1,000", "Dr. Smith" and "e.g. fever" in one piece. That costs at
most one token of delay (the model's next piece usually starts with a space).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Words that end with a period but do not end a sentence (lower case, without the final ".").
DEFAULT_ABBREVIATIONS = frozenset(
    {"dr", "mr", "mrs", "ms", "st", "sr", "jr", "prof", "vs", "approx", "e.g", "i.e", "dept"}
)
# Abbreviations that often end a sentence too: a boundary only if an upper-case word follows.
DEFAULT_AMBIGUOUS = frozenset({"etc", "a.m", "p.m"})

_SENTENCE_END = ".?!"
_CLAUSE_END = ",;:"
_CLOSERS = "\"')]”’"


@dataclass(slots=True)
class ClauseChunker:
    """Feed text pieces, get complete clauses back; ``flush()`` returns the remainder.

    ``min_clause_words``: a comma/semicolon/colon ends a clause only when the clause has at
    least this many words (short ones like "Okay," stay attached to what follows).
    """

    min_clause_words: int = 4
    abbreviations: frozenset[str] = DEFAULT_ABBREVIATIONS
    ambiguous: frozenset[str] = DEFAULT_AMBIGUOUS
    _buf: str = field(default="", init=False)
    _scan: int = field(default=0, init=False)  # buffer index already known not to be a boundary

    def feed(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        while (cut := self._find_boundary()) is not None:
            clause = self._buf[:cut].strip()
            self._buf = self._buf[cut:].lstrip()
            self._scan = 0
            if clause:
                out.append(clause)
        return out

    def flush(self) -> str | None:
        rest = self._buf.strip()
        self._buf, self._scan = "", 0
        return rest or None

    def _find_boundary(self) -> int | None:
        """Index just past a confirmed boundary (its punctuation and closers), or None."""
        buf = self._buf
        i = self._scan
        n = len(buf)
        while i < n:
            ch = buf[i]
            if ch == "\n" and buf[:i].strip():
                return i + 1
            if ch in _SENTENCE_END or ch in _CLAUSE_END:
                end = i + 1
                while end < n and (buf[end] in _CLOSERS or buf[end] in _SENTENCE_END):
                    end += 1  # "?!", '."', "...)"
                if end >= n:
                    self._scan = i  # undecided until the next piece arrives
                    return None
                if buf[end].isspace():
                    verdict = self._is_boundary(buf, i, ch, end)
                    if verdict is None:
                        self._scan = i
                        return None
                    if verdict:
                        return end
                i = end
                continue
            i += 1
        self._scan = n
        return None

    def _is_boundary(self, buf: str, i: int, ch: str, end: int) -> bool | None:
        """True/False, or None while it depends on text that has not arrived yet."""
        if ch in _CLAUSE_END:
            return _word_count(buf[:i]) >= self.min_clause_words
        if ch == ".":
            word = re.split(r"\s", buf[:i])[-1].lstrip("(\"'").lower()
            if word in self.abbreviations:
                return False
            if len(word) == 1 and word.isalpha() and buf[i - 1].isupper():
                return False  # an initial: "J. Smith"
            if word in self.ambiguous:
                nxt = buf[end:].lstrip()
                return nxt[0].isupper() if nxt else None
        return True


def _word_count(text: str) -> int:
    return len(re.findall(r"[\w']+", text))


def split_clauses(text: str, *, min_clause_words: int = 4) -> list[str]:
    """Chunk a whole text at once (for scripted and fallback replies)."""
    chunker = ClauseChunker(min_clause_words=min_clause_words)
    clauses = chunker.feed(text)
    if (rest := chunker.flush()) is not None:
        clauses.append(rest)
    return clauses
