"""Semantic safety net: catch red flags the rules did not anticipate, and only ever RAISE attention.

A curated bank of red-flag descriptions in lay words (``rulesets/default/safety_net.yaml``, each
with provenance and a discriminating protocol question) is compared, by sentence embedding, with
sliding word windows of the caller's partial and final transcripts. A window whose cosine
similarity to a description reaches the bank's calibrated threshold gives a :class:`SafetyNetHit`.

What a hit may do (see docs/clinical-rules.md, "Semantic safety net"):

* alert the clinician dashboard ("possible red flag: ... - rules did not fire");
* make the interview ask the entry's question next (``TriageInterview.queue_question``), so the
  caller's answer goes through the deterministic rules.

What it may not do: set, raise or lower a level, change a disposition, or put words in the
agent's mouth beyond the rule set's own question text. A hit carries no level at all. When the
rules already treat the call as an emergency (escalated, or level 1-2) the net stays quiet.

Plain Python: no Django, no model loading. The embedder is passed in (anything with
``embed(texts) -> (n, d)`` unit-length float rows; ``voice.embedding.MiniLMEmbedder`` in
production), and it is CPU work: callers on an event loop run :meth:`SafetyNet.check` in a thread.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .loader import DEFAULT_PATH, load_ruleset
from .ruleset import RuleSet
from .types import Assessment
from .yamlsrc import load_yaml

BANK_FILE = "safety_net.yaml"
SOURCE = "safety_net"  # Finding-like dicts and alerts from the net carry this as their source
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"[.!?;]+")
_CACHE_SIZE = 512  # window embeddings kept per SafetyNet (partials repeat most windows)


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class SafetyNetError(ValueError):
    """The bank file is invalid (unknown question or provenance id, bad threshold, ...)."""


@dataclass(frozen=True, slots=True)
class SafetyNetEntry:
    id: str
    label: str
    descriptions: tuple[str, ...]
    question_id: str
    question: str  # the rule set's own text for question_id
    provenance: tuple[str, ...]  # titles, from provenance.yaml


@dataclass(frozen=True, slots=True)
class SafetyNetBank:
    version: str
    threshold: float
    window_words: int
    window_stride: int
    min_words: int
    entries: tuple[SafetyNetEntry, ...]
    benign: tuple[str, ...] = ()  # look-alikes: a window closer to one of these is not a hit
    margin: float = 0.0
    partial_threshold: float = 1.0  # streaming partials (newest window): unfinished sentences mislead


@dataclass(frozen=True, slots=True)
class SafetyNetHit:
    """The nearest bank description to something the caller said, above the threshold.

    No level, no disposition: a hit raises attention and asks a question, nothing else.
    """

    description_id: str  # bank entry id, e.g. SN-CARDIAC-ATYPICAL
    label: str  # clinician-facing name of the red flag
    description: str  # the nearest lay description in the bank
    score: float  # cosine similarity, 0..1
    threshold: float
    question_id: str
    question: str
    provenance: tuple[str, ...]
    window: str  # the caller's words that matched (clinician-facing only; never logged at INFO)
    bank_version: str

    @property
    def alert_text(self) -> str:
        return f"possible red flag: {self.label} — rules did not fire"

    def to_dict(self) -> dict[str, Any]:
        """A reason dict in the shape of ``Finding.to_dict`` (what the dashboard already renders)."""
        return {
            "rule_id": self.description_id,
            "rule_version": self.bank_version,
            "label": self.alert_text,
            "evidence_text": self.window,
            "words": [self.window] if self.window else [],
            "assertion": "possible",
            "explanation": (
                f"Semantic safety net: the caller's words are close to '{self.description}' "
                f"(similarity {self.score:.2f}, threshold {self.threshold:.2f}), but no rule fired. "
                f"The interview asks next: '{self.question}'. The net never sets a level."
            ),
            "provenance": list(self.provenance),
            "level": None,
            "escalate": False,
            "source": SOURCE,
            "score": round(self.score, 4),
            "description": self.description,
            "question_id": self.question_id,
        }


# --- the bank -----------------------------------------------------------------------------


def load_bank(ruleset: RuleSet | None = None, path: str | Path | None = None) -> SafetyNetBank:
    """Load and validate the bank against ``ruleset`` (questions and provenance must exist)."""
    rs = ruleset or load_ruleset()
    p = Path(path) if path is not None else _bank_path(rs)
    data, problems = load_yaml(p)
    if problems:
        raise SafetyNetError("; ".join(f"{x.file}:{x.line}: {x.message}" for x in problems))
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise SafetyNetError(f"{p}: expected a mapping with an 'entries' list")
    threshold = float(data.get("threshold", 0))
    if not 0.0 < threshold < 1.0:
        raise SafetyNetError(f"{p}: threshold must be between 0 and 1, not {threshold}")
    entries, seen = [], set()
    for item in data["entries"]:
        eid = str(item.get("id") or "")
        where = f"{p}: entry {eid or '?'}"
        if not eid or eid in seen:
            raise SafetyNetError(f"{where}: missing or duplicate id")
        seen.add(eid)
        descriptions = tuple(str(d).strip() for d in item.get("descriptions") or () if str(d).strip())
        if not descriptions:
            raise SafetyNetError(f"{where}: no descriptions")
        qid = str(item.get("question") or "")
        if qid not in rs.questions:
            raise SafetyNetError(f"{where}: question {qid!r} is not in the rule set's protocols")
        prov_ids = tuple(str(x) for x in item.get("provenance") or ())
        unknown = [x for x in prov_ids if x not in rs.provenance]
        if not prov_ids or unknown:
            raise SafetyNetError(
                f"{where}: provenance missing or unknown ({', '.join(unknown) or 'none given'})"
            )
        entries.append(
            SafetyNetEntry(
                id=eid,
                label=str(item.get("label") or eid),
                descriptions=descriptions,
                question_id=qid,
                question=rs.questions[qid].text,
                provenance=rs.provenance_titles(prov_ids),
            )
        )
    benign = data.get("benign") or {}
    unknown = [x for x in benign.get("provenance") or () if x not in rs.provenance]
    if unknown:
        raise SafetyNetError(f"{p}: benign provenance unknown ({', '.join(unknown)})")
    return SafetyNetBank(
        version=str(data.get("version", "")),
        threshold=threshold,
        margin=float(data.get("margin", 0.0)),
        partial_threshold=max(threshold, float(data.get("partial_threshold", threshold))),
        benign=tuple(str(d).strip().lower() for d in benign.get("descriptions") or () if str(d).strip()),
        window_words=int(data.get("window_words", 14)),
        window_stride=int(data.get("window_stride", 7)),
        min_words=int(data.get("min_words", 4)),
        entries=tuple(entries),
    )


def _bank_path(rs: RuleSet) -> Path:
    root = Path(rs.path) if getattr(rs, "path", None) else DEFAULT_PATH
    root = root if root.is_dir() else root.parent
    return root / BANK_FILE


def windows(text: str, size: int = 14, stride: int = 7, min_words: int = 4) -> list[str]:
    """Word windows over each sentence: streaming ASR rarely punctuates, so long runs are cut into
    overlapping windows of ``size`` words; a sentence shorter than ``size`` is one window."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text or ""):
        words = _WORD.findall(sentence)
        if len(words) < min_words:
            continue
        if len(words) <= size:
            out.append(" ".join(words).lower())
            continue
        last = 0
        for start in range(0, len(words) - size + 1, stride):
            out.append(" ".join(words[start : start + size]).lower())
            last = start
        if last + size < len(words):  # the tail (the newest words of a partial) always counts
            out.append(" ".join(words[-size:]).lower())
    return list(dict.fromkeys(out))


def newest_window(text: str, size: int = 14, min_words: int = 4) -> list[str]:
    """The window ending at the newest word: on a streaming partial only this one is new (the
    partials before it already covered every earlier position, a few words apart)."""
    sentences = [w for w in (_WORD.findall(x) for x in _SENTENCE.split(text or "")) if w]
    if not sentences:
        return []
    words = sentences[-1]
    if len(words) < min_words and len(sentences) > 1:
        words = sentences[-2] + words  # "... my chest. It hurts" : keep the newest words in context
    if len(words) < min_words:
        return []
    return [" ".join(words[-size:]).lower()]


# --- matching ------------------------------------------------------------------------------


class SafetyNet:
    """Bank + embedder. Thread-safe; one instance is shared by every call of a process."""

    def __init__(self, embedder: Embedder, bank: SafetyNetBank | None = None) -> None:
        self.bank = bank or load_bank()
        self._embedder = embedder
        self._lock = threading.Lock()
        self._owner: list[int] = []  # description row -> entry index
        texts: list[str] = []
        for i, entry in enumerate(self.bank.entries):
            for d in entry.descriptions:
                texts.append(d.lower())
                self._owner.append(i)
        self._texts = texts
        self._matrix = np.asarray(embedder.embed(texts), dtype=np.float32)  # (n_descriptions, d)
        self._benign = np.asarray(embedder.embed(list(self.bank.benign)), dtype=np.float32)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def threshold(self) -> float:
        return self.bank.threshold

    def windows(self, text: str, *, newest_only: bool = False) -> list[str]:
        b = self.bank
        if newest_only:
            return newest_window(text, b.window_words, b.min_words)
        return windows(text, b.window_words, b.window_stride, b.min_words)

    def _embed_windows(self, wins: list[str]) -> np.ndarray:
        with self._lock:
            known = {w: self._cache[w] for w in wins if w in self._cache}
        missing = [w for w in wins if w not in known]
        if missing:
            vectors = np.asarray(self._embedder.embed(missing), dtype=np.float32)
            known.update(zip(missing, vectors, strict=True))
            with self._lock:
                for w, v in zip(missing, vectors, strict=True):
                    self._cache[w] = v
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([known[w] for w in wins])

    def scores(self, text: str, *, newest_only: bool = False) -> list[tuple[float, int, int, str]]:
        """Best (score, entry index, description row, window) per entry, highest first.
        ``newest_only``: just the window ending at the newest word (for streaming partials)."""
        wins = self.windows(text, newest_only=newest_only)
        if not wins:
            return []
        vectors = self._embed_windows(wins)
        sims = vectors @ self._matrix.T  # (n_windows, n_descriptions)
        if len(self._benign):
            # a window at least as close to a benign look-alike ("no fever, eating fine") does not count
            benign = (vectors @ self._benign.T).max(1, keepdims=True)
            sims = np.where(sims - benign >= self.bank.margin, sims, -1.0)
        best: dict[int, tuple[float, int, int, str]] = {}
        flat = sims.argmax(0)  # best window per description
        for row, win_idx in enumerate(flat):
            score = float(sims[win_idx, row])
            entry = self._owner[row]
            if entry not in best or score > best[entry][0]:
                best[entry] = (score, entry, row, wins[win_idx])
        return sorted(best.values(), reverse=True)

    def check(self, text: str, *, newest_only: bool = False) -> list[SafetyNetHit]:
        """Every bank entry whose nearest description reaches the threshold, best first."""
        hits = []
        threshold = self.bank.partial_threshold if newest_only else self.bank.threshold
        for score, entry_idx, row, win in self.scores(text, newest_only=newest_only):
            if score < threshold:
                break
            entry = self.bank.entries[entry_idx]
            hits.append(
                SafetyNetHit(
                    description_id=entry.id,
                    label=entry.label,
                    description=self._texts[row],
                    score=score,
                    threshold=threshold,
                    question_id=entry.question_id,
                    question=entry.question,
                    provenance=entry.provenance,
                    window=win,
                    bank_version=self.bank.version,
                )
            )
        return hits


def rules_already_urgent(assessment: Assessment | None) -> bool:
    """The rules already treat this as an emergency: the net has nothing to add."""
    if assessment is None:
        return False
    return bool(assessment.escalate) or (assessment.level is not None and int(assessment.level) <= 2)


class SafetyNetMonitor:
    """Per call: new hits only (each bank entry alerts once per call), and quiet when the rules
    already escalated. Holds no level and changes no assessment."""

    def __init__(self, net: SafetyNet) -> None:
        self.net = net
        self.alerted: dict[str, SafetyNetHit] = {}

    def observe(self, text: str, assessment: Assessment | None, *, final: bool = True) -> list[SafetyNetHit]:
        """``final=False`` (a streaming partial): only the newest window is compared; a final
        transcript is compared window by window in full."""
        if rules_already_urgent(assessment):
            return []
        hits = self.net.check(text, newest_only=not final)
        new = [h for h in hits if h.description_id not in self.alerted][:1]
        for h in new:  # one alert and one question at a time: the strongest
            self.alerted[h.description_id] = h
        return new
