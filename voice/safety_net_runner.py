"""Runs the semantic safety net (clinical_rules.safety_net) beside a live call, off the event loop.

One :class:`~clinical_rules.safety_net.SafetyNet` per process (the embedding model and the
bank's vectors are loaded once, in a thread); one :class:`SafetyNetRunner` per call. Partials
are skipped while a check is still running, like ASR partials; a final transcript always
gets its check (after the one in flight). A new hit queues the entry's question in the
interview and is handed to ``on_hit`` (the Django side alerts the dashboard and stores it).

On each final transcript of a statement the runner also asks the learned emergency scorer
(clinical_rules.emergency_scorer, same embedding model) for its raise-only second opinion: when
it raises, the interview gets its level-2 finding (``TriageInterview.raise_with``) and ``on_hit``
gets a :class:`~clinical_rules.emergency_scorer.LearnedRaise` (the dashboard alert).

Disabled with ``TRIAGE_SAFETY_NET=0`` (the scorer alone with ``TRIAGE_EMERGENCY_SCORER=0``). If the model cannot be loaded the call goes on with the
rules alone and the reason is logged once (the rules never depend on the net).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from voice.clinical import (
    LearnedRaise,
    SafetyNet,
    SafetyNetHit,
    SafetyNetMonitor,
    may_raise,
    rules_already_urgent,
)
from voice.config import switched_on

from .emergency_scorer import load_emergency_scorer

log = logging.getLogger(__name__)

OnHit = Callable[[SafetyNetHit | LearnedRaise, bool, float], Awaitable[None]]  # (hit, on_partial, check ms)
MIN_SCORED_WORDS = 6  # a statement, not a yes/no answer or a number: the scorer was trained on statements

_net: SafetyNet | None = None
_net_failed: str | None = None
_net_lock = threading.Lock()


def enabled() -> bool:
    return switched_on("TRIAGE_SAFETY_NET")


def load_safety_net() -> SafetyNet | None:
    """The process's SafetyNet (blocking: call in a thread), or None if disabled or unavailable."""
    global _net, _net_failed
    if not enabled():
        return None
    with _net_lock:
        if _net is None and _net_failed is None:
            try:
                from voice.embedding import shared_embedder

                _net = SafetyNet(shared_embedder())
            except Exception as exc:  # ModelUnavailable, a bad bank: the rules still run
                _net_failed = str(exc)
                log.error("semantic safety net disabled: %s", exc)
        return _net


class SafetyNetRunner:
    """Per call. ``interview`` is the call's TriageInterview (its assessment says whether the rules
    already escalated; ``queue_question`` takes the hit's question)."""

    def __init__(self, interview, on_hit: OnHit) -> None:
        self._interview = interview
        self._on_hit = on_hit
        self._monitor: SafetyNetMonitor | None = None
        self._busy = False
        self._final_lock = asyncio.Lock()
        self.check_ms: list[float] = []  # per check, for the bench and metrics
        self.skipped_partials = 0
        self.raises: list[LearnedRaise] = []  # the learned scorer's raises in this call (at most one)
        self.closed = False

    def close(self) -> None:
        """The call ended: checks still embedding finish in their thread but alert nobody."""
        self.closed = True

    async def _ensure(self) -> SafetyNetMonitor | None:
        if self._monitor is None:
            net = await asyncio.to_thread(load_safety_net)
            if net is None:
                return None
            self._monitor = SafetyNetMonitor(net)
        return self._monitor

    async def observe(self, text: str, *, final: bool) -> list[SafetyNetHit]:
        if self.closed or not text or not text.strip() or not enabled():
            return []
        if not final and self._busy:
            self.skipped_partials += 1  # the next partial (or the final) covers these words
            return []
        async with self._final_lock:  # one check at a time per call; finals wait their turn
            self._busy = True
            try:
                monitor = await self._ensure()
                if monitor is None:
                    return []
                t0 = time.perf_counter()
                hits = await asyncio.to_thread(monitor.observe, text, self._interview.assessment, final=final)
                ms = (time.perf_counter() - t0) * 1000.0
                self.check_ms.append(ms)
            finally:
                self._busy = False
        fresh = []
        for hit in hits:
            if self.closed:
                break
            if rules_already_urgent(self._interview.assessment) or self._interview.escalated:
                break  # the rules escalated while we were embedding: they have it
            self._interview.queue_question(hit.question_id)
            fresh.append(hit)
            log.info("safety net hit %s score %.2f (rules did not fire)", hit.description_id, hit.score)
            try:
                await self._on_hit(hit, not final, ms)
            except Exception:
                log.exception("safety net alert for %s could not be delivered", hit.description_id)
        if final and not self.closed:
            await self._score(text)
        return fresh

    async def _score(self, text: str) -> None:
        """The learned scorer's raise-only opinion on one final statement (at most one raise per call)."""
        if self.raises or len(text.split()) < MIN_SCORED_WORDS or not may_raise(self._interview.assessment):
            return
        scorer = await asyncio.to_thread(load_emergency_scorer)
        if scorer is None:
            return
        t0 = time.perf_counter()
        reading = await asyncio.to_thread(scorer.score, text, self._interview.context)
        ms = (time.perf_counter() - t0) * 1000.0
        if self.closed or not reading.raises:
            return
        raised = LearnedRaise(reading, text)
        if not self._interview.raise_with(raised.finding):
            return  # the rules got there first (or the call is decided)
        self.raises.append(raised)
        log.info("learned scorer raised the call to level 2 (p %.2f, threshold %.2f)", reading.probability,
                 reading.threshold)  # fmt: skip
        try:
            await self._on_hit(raised, False, ms)
        except Exception:
            log.exception("learned scorer alert could not be delivered")
