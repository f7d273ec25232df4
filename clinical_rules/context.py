"""Assertion context (negated / historical / hypothetical / someone else / uncertain ...) via negspacy.

negspacy implements NegEx (Chapman et al. 2001) as a spaCy component: cue phrases that precede or
follow a target, pseudo-cues that look like cues but are not ("not sure", "didn't help"), and
terminators ("but") that end a cue's reach. The algorithm is category-agnostic, so ConText's other
categories (Harkema et al. 2009) run as further instances with their own cue lists, all from the
rule set's ``context.yaml``.

One extension over stock negspacy (pinned to 1.1.0 for this reason): a cue only reaches targets
within ``window`` tokens, as in the original NegEx. negspacy scopes a cue to the end of the
sentence, and streaming ASR text often has no sentence boundaries at all, so without the window a
"no" at the start of a long utterance would negate everything after it - a missed red flag.
The subclass also records which cue fired, for the explanation.

The Doc is built from our own normalised tokens; words that are not cue words become a
placeholder so garbage input never grows spaCy's string store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import spacy
from negspacy.negation import Negex
from spacy.tokens import Doc, Span

from .text import Tokens

_PLACEHOLDER = "_"
_NEVER = "\u2063never\u2063"  # keeps negspacy's PhraseMatcher lists non-empty
CHUNK = 400  # tokens per context pass on very long transcripts
OVERLAP = 24


@dataclass(frozen=True, slots=True)
class CategorySpec:
    name: str
    window: int
    preceding: tuple[tuple[str, ...], ...]
    following: tuple[tuple[str, ...], ...]
    pseudo: tuple[tuple[str, ...], ...]
    termination: tuple[tuple[str, ...], ...]
    following_window: int | None = None  # reach of cues AFTER a target ("the pain has gone")
    assertion: str = ""  # the assertion bucket (defaults to the category name)

    def __post_init__(self) -> None:
        if not self.assertion:
            object.__setattr__(self, "assertion", self.name)


class _WindowedNegex(Negex):
    """negspacy's Negex with a token window and a record of the cue that fired."""

    def __init__(
        self, nlp, name: str, neg_termset: dict, extension_name: str, window: int, following_window: int
    ):
        super().__init__(nlp, name, neg_termset, extension_name=extension_name, span_keys=["targets"])
        self.window = window
        self.following_window = following_window

    def __call__(self, doc: Doc) -> Doc:
        # most categories have no cue in a given utterance: skip negspacy's boundary walk then
        matches = self.matcher(doc)
        if not any(self.nlp.vocab.strings[m] in ("Preceding", "Following") for m, _s, _e in matches):
            return doc
        return self.negex(doc)

    @staticmethod
    def yield_spans_within_boundary(doc: Doc, boundary, span_keys):
        # negspacy re-reads doc.spans for every boundary (a new Span object per target each time)
        start, end = boundary
        for span in doc.user_data["cr_targets"]:
            if start <= span.start < end and start < span.end <= end:
                yield span

    def _apply_negation(self, span: Span, sub_preceding, sub_following) -> None:
        best: tuple[int, int] | None = None
        best_dist = self.window + 1
        for _, s, e in sub_preceding:
            dist = span.start - e
            if e <= span.start and dist < best_dist:
                best, best_dist = (s, e), dist
        for _, s, e in sub_following:
            dist = s - span.end
            if s >= span.end and dist <= self.following_window and dist < best_dist:
                best, best_dist = (s, e), dist
        if best is not None:
            span._.set(self.extension_name, True)
            span.doc.user_data[("cue", self.extension_name, span.start, span.end)] = best


class ContextAnalyzer:
    """Runs every category over one utterance's target spans. Built once per rule set."""

    def __init__(self, categories: Sequence[CategorySpec], shared_termination: Sequence[tuple[str, ...]]):
        self.categories = tuple(categories)
        self.nlp = spacy.blank("en")
        self.nlp.tokenizer = _SpaceTokenizer(self.nlp.vocab)
        self._vocab_words: set[str] = set()
        self._components: list[tuple[str, _WindowedNegex]] = []
        self._only_with_other = {c.name for c in self.categories if c.assertion in ("past", "recent")}
        self._other_names = {c.name for c in self.categories if c.assertion == "other"}
        self._lock = threading.Lock()
        for cat in self.categories:
            termset = {
                "pseudo_negations": self._phrases(cat.pseudo),
                "preceding_negations": self._phrases(cat.preceding),
                "following_negations": self._phrases(cat.following),
                "termination": self._phrases((*shared_termination, *cat.termination)),
            }
            ext = f"cr_{cat.name}"
            fwin = cat.window if cat.following_window is None else cat.following_window
            self._components.append((cat.name, _WindowedNegex(self.nlp, ext, termset, ext, cat.window, fwin)))

    def _phrases(self, phrases: Sequence[tuple[str, ...]]) -> list[str]:
        out = []
        for p in phrases:
            self._vocab_words.update(p)
            out.append(" ".join(p))
        return out or [_NEVER]

    def __call__(
        self, tokens: Tokens, targets: Sequence[tuple[int, int]]
    ) -> list[dict[str, tuple[int, int]]]:
        """For each target (token span), the categories that apply and the cue span of each."""
        results: list[dict[str, tuple[int, int]]] = [{} for _ in targets]
        if not targets:
            return results
        n = len(tokens.words)
        if n <= CHUNK + OVERLAP:
            chunks = [(0, n)]
        else:
            chunks = [(a, min(n, a + CHUNK)) for a in range(0, n, CHUNK)]
        for a, b in chunks:
            lo, hi = max(0, a - OVERLAP), min(n, b + OVERLAP)
            idx = [i for i, (s, _e) in enumerate(targets) if a <= s < b]
            if idx:
                self._run(tokens, lo, hi, targets, idx, results)
        return results

    def _run(self, tokens: Tokens, lo: int, hi: int, targets, idx, results) -> None:
        vocab_words = self._vocab_words
        words = [w if w in vocab_words else _PLACEHOLDER for w in tokens.words[lo:hi]]
        starts = list(tokens.sent_starts[lo:hi])
        starts[0] = True
        with self._lock:
            doc = Doc(self.nlp.vocab, words=words, sent_starts=starts)
            spans = []
            for i in idx:
                s, e = targets[i]
                spans.append(Span(doc, s - lo, min(e, hi) - lo, label="TARGET"))
            doc.spans["targets"] = spans
            doc.user_data["cr_targets"] = spans
            fired_other = False
            for name, comp in self._components:
                # "past"/"recent" only tell family history from a report about someone else now
                if name in self._only_with_other and not fired_other:
                    continue
                comp(doc)
                if name in self._other_names:
                    fired_other = fired_other or any(span._.get(comp.extension_name) for span in spans)
            for i, span in zip(idx, spans, strict=True):
                for name, comp in self._components:
                    cue = doc.user_data.get(("cue", comp.extension_name, span.start, span.end))
                    if cue is not None and span._.get(comp.extension_name):
                        results[i][name] = (cue[0] + lo, cue[1] + lo)


class _SpaceTokenizer:
    """Cue phrases arrive already normalised: split on spaces, nothing else."""

    def __init__(self, vocab):
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        return Doc(self.vocab, words=text.split(" "))

    def pipe(self, texts, batch_size: int = 1000):
        for t in texts:
            yield self(t)
