"""Check the model's words before they are spoken; fall back to the rules' exact text.

The clinical rules decide what must be said (``Prompt.text``). The model may only put a brief
acknowledgement in front of it. ``GuardedReply`` reads the token stream through the
``ClauseChunker`` and yields clauses with their source:

* acknowledgement clauses (before the required text) are spoken as soon as each is complete and
  valid: short, no question, no diagnosis, condition name or medication advice. An invalid one
  stops the model at once and the required text is spoken deterministically.
* the required part is held back until it matches ``Prompt.text`` (normalized word overlap at
  or above ``match_threshold``, same numbers and negations, nothing unsafe added), then spoken
  as the model said it; otherwise the exact required text is spoken (source "fallback").
  Holding it costs nothing audible: the acknowledgement is playing meanwhile.
* a missed budget (no complete clause by ``first_clause_deadline_ms``, required text not
  verified by ``total_deadline_ms``), a model error, or a model with no free context
  (``saturated``: the request would queue behind another caller's reply) also falls back.
* ``required_verbatim`` (the default): the model's job ends with its acknowledgement. As soon as
  the acknowledgement sentence is complete (or the deadline passes after a valid first clause)
  the stream is cancelled and the rules' own words follow (source "rules"): the patient hears
  the required text word for word, and the answer does not wait for the model to re-type it
  (about 20 tokens, over a second on a 2-core CPU). A model that gives no acknowledgement in
  time, or an invalid one, is a fallback as before. ``required_verbatim=False`` keeps the
  paraphrase path above (the model's wording of the required text, verified).
* ``prompt.fixed`` (emergency scripts) never reaches the model: source "script".
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

from voice.events import ReplySource
from voice.interfaces import Prompt, ReplyGenerator, TokenStream
from voice.llm.chunker import ClauseChunker, split_clauses
from voice.llm.prompts import ACK_MAX_WORDS, build_reply_messages

log = logging.getLogger(__name__)

ClauseRole = Literal["ack", "required"]

# Diagnostic language: the agent must never suggest what the patient has.
DIAGNOSIS_PATTERNS: tuple[str, ...] = (
    r"\byou(?: may| might| could)? have\b", r"\byou'?ve got\b", r"\bdiagnos", r"\bsounds like (?:a|an|you)\b",
    r"\bit'?s probably\b", r"\bit is probably\b", r"\bprobably (?:a|an|just)\b", r"\bcould be (?:a|an)\b",
    r"\bmight be (?:a|an)\b", r"\bmay be (?:a|an)\b", r"\blikely (?:a|an|to be)\b", r"\bconsistent with\b",
    r"\bsigns? of (?:a|an)\b", r"\bsymptoms? of\b", r"\bcaused by\b", r"\bsuffering from\b",
)  # fmt: skip
DISEASE_TERMS: tuple[str, ...] = (
    "flu", "influenza", "covid", "coronavirus", "virus", "viral", "infection", "infected", "bacterial",
    "migraine", "heart attack", "cardiac arrest", "stroke", "angina", "pneumonia", "bronchitis",
    "asthma", "copd", "appendicitis", "sprain", "sprained", "fracture", "fractured", "broken bone",
    "concussion", "diabetes", "diabetic", "cancer", "tumor", "tumour", "sepsis", "meningitis",
    "allergy", "allergic reaction", "anaphylaxis", "strep", "uti", "kidney stone", "gallstone",
    "gastroenteritis", "stomach bug", "food poisoning", "anxiety", "panic attack", "depression",
    "dehydration", "dehydrated", "hypertension", "blood clot", "embolism", "thrombosis", "ulcer",
    "arthritis", "shingles", "measles", "chickenpox", "sinusitis", "tonsillitis", "a cold",
    "ear infection", "mono", "lyme", "hernia", "seizure", "epilepsy",
)  # fmt: skip
MEDICATION_PATTERNS: tuple[str, ...] = (
    r"\bmedicat", r"\bmedicine", r"\bibuprofen\b", r"\bparacetamol\b", r"\bacetaminophen\b",
    r"\btylenol\b", r"\badvil\b", r"\bmotrin\b", r"\baspirin\b", r"\bnaproxen\b", r"\bantibiotic",
    r"\bantihistamine", r"\bpainkiller", r"\bpain reliever", r"\bdose\b", r"\bdosage\b", r"\bpills?\b",
    r"\btablets?\b", r"\b\d+\s?mg\b", r"\bointment\b", r"\bcream\b", r"\binhaler\b",
    r"\bover[- ]the[- ]counter\b", r"\byou should\b", r"\btry (?:taking|to take|some|an?)\b",
    r"\b(?:take|use|apply) (?:some|an?|the|two|one)\b", r"\bice (?:it|pack)\b", r"\bheat pack\b",
)  # fmt: skip
# Instructions come only from the rules: an acknowledgement never tells the patient what to do.
ADVICE_PATTERNS: tuple[str, ...] = (
    r"^\W*(?:please|rest|drink|call|go|take|stay|keep|avoid|don't|do not|try|put|apply|use|eat|sleep|lie|sit|stop|get)\b",
    r"\byou (?:should|need to|must|ought to)\b", r"\bmake sure\b", r"\bbe sure to\b", r"\bit'?s best to\b",
    r"\bI(?:'d| would)? (?:recommend|suggest|advise)\b",
)  # fmt: skip
# Model refusals and meta-talk ("I can't assist with that") must never reach a patient.
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bcan(?:no|')t (?:assist|help)\b", r"\bunable to (?:assist|help)\b", r"\bnot able to (?:assist|help)\b",
    r"\bas an ai\b", r"\blanguage model\b", r"\bI(?:'m| am) (?:just )?an? (?:ai|assistant|bot)\b",
    r"\brequired text\b", r"\bpatient said\b",
)  # fmt: skip
# The acknowledgement speaks as the nurse: never in the patient's voice ("I have a fever").
PATIENT_VOICE_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'ve| have| had| feel| felt|'m having| am having| got| think I)\b", r"\bmy\b",
)  # fmt: skip
_FUNCTION_WORDS = frozenset(
    {"a", "an", "the", "and", "or", "to", "of", "in", "on", "it", "is", "that", "this", "i", "you", "so"}
)
NEGATIONS = frozenset(
    {"no", "not", "never", "none", "without", "don't", "doesn't", "didn't", "won't", "can't", "cannot",
     "isn't", "aren't", "wasn't", "weren't", "shouldn't", "haven't", "hasn't"}
)  # fmt: skip


def _compile(patterns: tuple[str, ...], terms: tuple[str, ...] = ()) -> re.Pattern[str]:
    parts = [*patterns, *(r"\b" + re.escape(t) + r"\b" for t in terms)]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)


def normalize_words(text: str) -> list[str]:
    """Lower-case words (apostrophes kept inside words), punctuation dropped."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))


@dataclass(frozen=True, slots=True)
class RequiredMatch:
    score: float  # matched words / max(len(required), matched span) — 1.0 is word-for-word
    prefix_words: int  # candidate words before the matched span (a fused acknowledgement)
    suffix_words: int  # candidate words after it
    covers_end: bool  # the span reaches the required text's last word
    critical_ok: bool  # same numbers and negations inside the span as in the required text
    prefix: str = ""
    suffix: str = ""


def match_required(candidate: str, required: str) -> RequiredMatch:
    """Normalized word-overlap match of ``candidate`` against the required text."""
    c, r = normalize_words(candidate), normalize_words(required)
    if not c or not r:
        return RequiredMatch(0.0, len(c), 0, False, False)
    blocks = [b for b in SequenceMatcher(None, c, r, autojunk=False).get_matching_blocks() if b.size]
    if not blocks:
        return RequiredMatch(0.0, len(c), 0, False, False)
    best: tuple[float, int, int] | None = None
    # A stray single-word match in the acknowledgement ("thank *you*") must not stretch the span:
    # try dropping leading/trailing blocks and keep the best-scoring span.
    for i in range(len(blocks)):
        for j in range(i, len(blocks)):
            sel = blocks[i : j + 1]
            matched = sum(b.size for b in sel)
            span = sel[-1].a + sel[-1].size - sel[0].a
            score = matched / max(len(r), span)
            if best is None or score > best[0]:
                best = (score, i, j)
    assert best is not None
    score, i, j = best
    a0, a1 = blocks[i].a, blocks[j].a + blocks[j].size
    covers_end = blocks[j].b + blocks[j].size == len(r)

    def critical(words: list[str]) -> Counter[str]:
        return Counter(w for w in words if w in NEGATIONS or any(ch.isdigit() for ch in w))

    return RequiredMatch(
        score=score,
        prefix_words=a0,
        suffix_words=len(c) - a1,
        covers_end=covers_end,
        critical_ok=critical(c[a0:a1]) == critical(r),
        prefix=" ".join(c[:a0]),
        suffix=" ".join(c[a1:]),
    )


@dataclass
class GuardrailConfig:
    first_clause_deadline_ms: float = 700.0  # generation start -> first complete clause
    total_deadline_ms: float = 2500.0  # generation start -> required text verified
    match_threshold: float = 0.8
    ack_max_words: int = ACK_MAX_WORDS
    max_trailing_words: int = 2  # words allowed after the required text ("..., please.")
    min_clause_words: int = 4  # chunker: comma clauses shorter than this stay attached
    max_tokens: int = 64
    temperature: float = 0.2
    diagnosis_patterns: tuple[str, ...] = DIAGNOSIS_PATTERNS
    disease_terms: tuple[str, ...] = DISEASE_TERMS
    medication_patterns: tuple[str, ...] = MEDICATION_PATTERNS
    patient_voice_patterns: tuple[str, ...] = PATIENT_VOICE_PATTERNS
    advice_patterns: tuple[str, ...] = ADVICE_PATTERNS
    refusal_patterns: tuple[str, ...] = REFUSAL_PATTERNS
    max_echo_ratio: float = 0.6  # share of an acknowledgement's content words taken from the patient
    required_verbatim: bool = True  # the model says only the acknowledgement (module docstring)
    # A generator whose every context is busy (``saturated``) would make this reply wait for
    # another caller's; its acknowledgement could not arrive in budget: fall back at once.
    skip_when_saturated: bool = True

    @classmethod
    def from_pipeline(cls, config: Any, **overrides: Any) -> GuardrailConfig:
        """Budgets and sampling from ``voice.config.PipelineConfig`` (``budgets_ms["first_clause"]``,
        ``llm_max_tokens``, ``llm_temperature``)."""
        budgets = getattr(config, "budgets_ms", {}) or {}
        values: dict[str, Any] = {}
        if "first_clause" in budgets:
            values["first_clause_deadline_ms"] = float(budgets["first_clause"])
        if "llm_total" in budgets:
            values["total_deadline_ms"] = float(budgets["llm_total"])
        if getattr(config, "llm_max_tokens", None):
            values["max_tokens"] = int(config.llm_max_tokens)
        if getattr(config, "llm_temperature", None) is not None:
            values["temperature"] = float(config.llm_temperature)
        if getattr(config, "llm_required_verbatim", None) is not None:
            values["required_verbatim"] = bool(config.llm_required_verbatim)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        self._diagnosis = _compile(self.diagnosis_patterns, self.disease_terms)
        self._medication = _compile(self.medication_patterns)
        self._patient_voice = _compile(self.patient_voice_patterns)
        self._advice = _compile(self.advice_patterns)
        self._refusal = _compile(self.refusal_patterns)

    def ack_problem(self, clause: str, patient_said: str) -> str | None:
        """Reason code if an acknowledgement clause must not be spoken."""
        if "?" in clause:
            return "question"
        if self._refusal.search(clause):
            return "refusal"
        if reason := self.unsafe(clause):
            return reason
        if self._patient_voice.search(clause):
            return "patient_voice"
        if self._advice.search(clause):
            return "advice"
        content = [w for w in normalize_words(clause) if w not in _FUNCTION_WORDS]
        said = set(normalize_words(patient_said))
        if len(content) >= 3 and sum(w in said for w in content) / len(content) >= self.max_echo_ratio:
            return "echo"
        return None

    def unsafe(self, text: str, *, allowed_in: str = "") -> str | None:
        """Reason code if ``text`` says something the agent must not (beyond ``allowed_in``)."""
        for reason, rx in (("diagnosis", self._diagnosis), ("medication", self._medication)):
            found = Counter(m.group(0).lower() for m in rx.finditer(text))
            allowed = Counter(m.group(0).lower() for m in rx.finditer(allowed_in))
            if found - allowed:
                return reason
        return None


@dataclass
class GuardrailStats:
    """Process-wide counters (for metrics): replies by source, fallbacks by reason."""

    replies: int = 0
    llm: int = 0
    scripted: int = 0
    fallbacks: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, reply: GuardedReply) -> None:
        with self._lock:
            self.replies += 1
            if reply.fallback_used:
                self.fallbacks[reply.fallback_reason or "unknown"] += 1
            elif any(c.source == "script" for c in reply.clauses):
                self.scripted += 1
            else:
                self.llm += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "replies": self.replies,
                "llm": self.llm,
                "scripted": self.scripted,
                "fallbacks": dict(self.fallbacks),
            }


GUARDRAIL_STATS = GuardrailStats()


@dataclass(frozen=True, slots=True)
class ReplyClause:
    text: str
    source: ReplySource  # llm / fallback / script
    role: ClauseRole  # ack: the model's acknowledgement; required: carries Prompt.text
    t_ms: float  # since the reply started


class _Fallback(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardedReply:
    """One agent reply: ``async for clause in GuardedReply(...)`` yields ``ReplyClause``s.

    Iterate once. ``cancel()`` (barge-in) stops the model; iteration then ends. After the
    iteration: ``clauses``, ``fallback_used``, ``fallback_reason``, ``ttft_ms``,
    ``first_clause_ms``, ``required_ms``, ``text``.
    """

    def __init__(
        self,
        prompt: Prompt,
        patient_said: str,
        generator: ReplyGenerator | None,
        *,
        config: GuardrailConfig | None = None,
        stats: GuardrailStats | None = GUARDRAIL_STATS,
    ) -> None:
        self.prompt = prompt
        self.patient_said = patient_said
        self.generator = generator
        self.config = config or GuardrailConfig()
        self.stats = stats
        self.clauses: list[ReplyClause] = []
        self.fallback_used = False
        self.fallback_reason: str | None = None
        self.ttft_ms: float | None = None
        self.first_clause_ms: float | None = None
        self.required_ms: float | None = None
        self.cancelled = False
        self._stream: TokenStream | None = None
        self._t0 = 0.0
        self._started = False

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.clauses)

    @property
    def token_stream(self) -> TokenStream | None:
        """The model's stream (None for scripted replies), e.g. for its ``stats``."""
        return self._stream

    def cancel(self) -> None:
        self.cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    def __aiter__(self) -> AsyncIterator[ReplyClause]:
        if self._started:
            raise RuntimeError("a GuardedReply is iterated once")
        self._started = True
        return self._run()

    async def collect(self) -> list[ReplyClause]:
        return [clause async for clause in self]

    # -- internals -------------------------------------------------------------------------

    def _ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000

    def _emit(self, text: str, source: ReplySource, role: ClauseRole) -> ReplyClause:
        clause = ReplyClause(text, source, role, self._ms())
        if self.first_clause_ms is None:
            self.first_clause_ms = clause.t_ms
        if role == "required" and self.required_ms is None:
            self.required_ms = clause.t_ms
        self.clauses.append(clause)
        return clause

    def _required_clauses(self, source: ReplySource) -> list[ReplyClause]:
        return [
            self._emit(text, source, "required")
            for text in split_clauses(self.prompt.text, min_clause_words=self.config.min_clause_words)
        ]

    async def _run(self) -> AsyncIterator[ReplyClause]:
        self._t0 = time.monotonic()
        try:
            if not self.prompt.text.strip():
                return
            if self.prompt.fixed or self.generator is None:
                for clause in self._required_clauses("script"):
                    yield clause
                return
            try:
                async for clause in self._from_model():
                    yield clause
            except _Fallback as fb:
                if self.cancelled:
                    return
                self.fallback_used, self.fallback_reason = True, fb.reason
                log.info("reply %s: fallback to required text (%s)", self.prompt.kind, fb.reason)
                for clause in self._required_clauses("fallback"):
                    yield clause
        finally:
            if self._stream is not None:
                self._stream.cancel()  # no-op when it already ended
            if self.stats is not None and not self.cancelled:
                self.stats.record(self)

    async def _from_model(self) -> AsyncIterator[ReplyClause]:
        cfg = self.config
        required = self.prompt.text
        assert self.generator is not None
        if cfg.skip_when_saturated and getattr(self.generator, "saturated", False):
            raise _Fallback("llm_busy")
        try:
            stream = self.generator.stream(
                build_reply_messages(required, self.patient_said),
                max_tokens=cfg.max_tokens,
                temperature=cfg.temperature,
            )
        except Exception as exc:  # model not loadable: speak the rules' words
            log.warning("reply generation failed to start: %s", type(exc).__name__)
            raise _Fallback("llm_error") from exc
        self._stream = stream
        pieces = aiter(stream)
        chunker = ClauseChunker(min_clause_words=cfg.min_clause_words)
        ack_words = 0
        held: list[str] = []  # clauses of the required part, held until verified
        first_deadline = self._t0 + cfg.first_clause_deadline_ms / 1000
        total_deadline = self._t0 + cfg.total_deadline_ms / 1000
        got_clause = False
        done = False
        while not done and not self.cancelled:
            deadline = total_deadline if got_clause else min(first_deadline, total_deadline)
            try:
                piece = await _next_before(pieces, deadline)
            except TimeoutError:
                if cfg.required_verbatim and ack_words:
                    break  # a valid acknowledgement is out: the rules' words follow now
                raise _Fallback("total_deadline" if got_clause else "first_clause_deadline") from None
            except Exception as exc:
                log.warning("reply generation failed: %s", type(exc).__name__)
                raise _Fallback("llm_error") from exc
            if piece is None:
                clauses, done = ([rest] if (rest := chunker.flush()) else []), True
            else:
                if self.ttft_ms is None:
                    self.ttft_ms = self._ms()
                clauses = chunker.feed(piece)
            for clause in clauses:
                got_clause = True
                if not held and not self._starts_required(clause):
                    ack_words += len(normalize_words(clause))
                    self._check_ack(clause, ack_words)
                    yield self._emit(clause, "llm", "ack")
                    if cfg.required_verbatim and clause.rstrip(" \"')”")[-1:] in ".!":
                        done = True  # the acknowledgement sentence is complete
                        break
                    if cfg.required_verbatim:
                        total_deadline = first_deadline  # more acknowledgement only within budget
                    continue
                if cfg.required_verbatim:
                    if not ack_words:
                        raise _Fallback("ack_missing")
                    done = True  # the model reached the required part: the rules say it
                    break
                held.append(clause)
                if self._verified(held, ack_words, final=False):
                    done = True
                    break
        if self.cancelled:
            return
        if cfg.required_verbatim:
            stream.cancel()
            if not ack_words:
                raise _Fallback("ack_missing")
            for clause in self._required_clauses("rules"):
                yield clause
            return
        if not held:
            raise _Fallback("required_missing")
        if not self._verified(held, ack_words, final=True):
            raise _Fallback("required_mismatch")
        stream.cancel()  # anything after the required text is not spoken
        for clause in held:
            yield self._emit(clause, "llm", "required")

    def _starts_required(self, clause: str) -> bool:
        """Is this clause the start of the required part (rather than acknowledgement)?"""
        if clause.rstrip(" \"')”").endswith("?"):
            return True  # any question goes to verification: only the required one may pass
        words = normalize_words(clause)
        r = normalize_words(self.prompt.text)
        if not words:
            return False
        matched = sum(b.size for b in SequenceMatcher(None, words, r, autojunk=False).get_matching_blocks())
        return matched >= min(3, len(r)) and matched / len(words) >= 0.6

    def _check_ack(self, clause: str, ack_words: int) -> None:
        if reason := self.config.ack_problem(clause, self.patient_said):
            raise _Fallback(f"ack_{reason}")
        if ack_words > self.config.ack_max_words:
            raise _Fallback("ack_too_long")

    def _verified(self, held: list[str], ack_words: int, *, final: bool) -> bool:
        """Does the held text carry the required text, and nothing unsafe? Raises on unsafe."""
        cfg, required = self.config, self.prompt.text
        text = " ".join(held)
        m = match_required(text, required)
        ready = m.score >= cfg.match_threshold and m.covers_end and text.rstrip(" \"')”")[-1:] in ".?!"
        if not ready and not final:
            return False  # keep reading: the required text may not be complete yet
        if m.score < cfg.match_threshold or not m.covers_end:
            return False
        if not m.critical_ok:
            raise _Fallback("required_altered")
        if text.count("?") > required.count("?"):
            raise _Fallback("extra_question")
        if m.suffix_words > cfg.max_trailing_words:
            raise _Fallback("trailing_text")
        if ack_words + m.prefix_words > cfg.ack_max_words:
            raise _Fallback("ack_too_long")
        if m.prefix and (reason := cfg.ack_problem(m.prefix, self.patient_said)):
            raise _Fallback(f"ack_{reason}")
        if reason := cfg.unsafe(text, allowed_in=required):
            raise _Fallback(f"required_{reason}")
        return True


async def _next_before(pieces: AsyncIterator[str], deadline: float) -> str | None:
    """Next piece, None at the end; TimeoutError past ``deadline`` (monotonic seconds)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    try:
        return await asyncio.wait_for(anext(pieces), remaining)
    except StopAsyncIteration:
        return None
