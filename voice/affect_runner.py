"""Measures each finished turn off the event loop and hands the call its affect reading.

One :class:`AffectRunner` per call (``VoiceSession`` holds it). The session gives it the turn's
audio at the endpoint (:meth:`turn_audio`) and the turn's words when the final transcript is
committed (:meth:`turn_words`); when both are in, the tags are computed and ``on_reading`` gets
the :class:`~voice.affect.AffectReading`. A turn whose words were judged noise gets no reading.

Praat (parselmouth) holds the GIL while it computes (measured: a 10 s turn stalls other threads
~50 ms), so the features are extracted in a worker *process* (one per server process, spawned on
first use), never in a thread of the event loop's process. Each extraction has a wall-clock budget
(``budget_s``, queueing included): past it the turn is read from its words only and counted in
``budget_misses``. ``TRIAGE_AFFECT=0`` turns the acoustic half off (the words still count).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable

import numpy as np

from voice.affect import AffectReading, AffectTracker
from voice.config import switched_on
from voice.paralinguistics import ParalinguisticFeatures, extract

log = logging.getLogger(__name__)

OnReading = Callable[[AffectReading], None]

_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_warming: concurrent.futures.Future | None = None


def enabled() -> bool:
    return switched_on("TRIAGE_AFFECT")


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn: a fork of a process running threads (daphne, the compute pool) is unsafe.
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return _pool


def shutdown() -> None:
    """At process exit (tests, tools), or after the worker died: stop the worker process."""
    global _pool, _warming
    with _pool_lock:
        pool, _pool, _warming = _pool, None, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _measure(audio: np.ndarray, sample_rate: int) -> ParalinguisticFeatures:
    return extract(audio, sample_rate)


def start_worker() -> concurrent.futures.Future:
    """Start the worker process and import Praat in it, without waiting (once per process): the
    first turn of the first call must not pay for the spawn (about a second)."""
    global _warming
    with _pool_lock:
        warming = _warming
    if warming is None or (warming.done() and warming.exception() is not None):
        warming = _executor().submit(_measure, np.zeros(1600, dtype=np.float32), 16000)
        with _pool_lock:
            _warming = warming
    return warming


def warm_up(timeout: float = 30.0) -> float:
    """Blocking: start the worker process and wait for it; seconds it took."""
    t0 = time.perf_counter()
    start_worker().result(timeout=timeout)
    return time.perf_counter() - t0


class AffectRunner:
    def __init__(self, on_reading: OnReading, *, budget_s: float = 3.0, tracker: AffectTracker | None = None):
        self.tracker = tracker or AffectTracker()
        if enabled():
            start_worker()
        self._on_reading = on_reading
        self.budget_s = budget_s
        self._features: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self.budget_misses = 0
        self.errors = 0
        self.closed = False

    def turn_audio(self, turn_id: int, audio: np.ndarray, sample_rate: int) -> None:
        """At the endpoint: start measuring the turn (returns at once)."""
        if self.closed or not enabled() or audio.size == 0:
            return
        loop = asyncio.get_running_loop()
        for old in [t for t in self._features if t < turn_id - 4]:  # turns that never got words
            self._features.pop(old).cancel()
        fut = loop.create_future()
        self._features[turn_id] = fut
        task = loop.create_task(
            self._measure(fut, np.ascontiguousarray(audio, dtype=np.float32), sample_rate)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _measure(self, fut: asyncio.Future, audio: np.ndarray, sample_rate: int) -> None:
        loop = asyncio.get_running_loop()
        features = None
        try:
            job = loop.run_in_executor(_executor(), _measure, audio, sample_rate)
            features = await asyncio.wait_for(job, self.budget_s)
        except TimeoutError:
            self.budget_misses += 1
            log.warning(
                "affect features over their %.1f s budget; turn read from its words only", self.budget_s
            )
        except concurrent.futures.process.BrokenProcessPool:
            self.errors += 1
            shutdown()  # the next turn starts a fresh worker
            log.error("affect worker process died; turn read from its words only")
        except Exception as exc:
            self.errors += 1
            log.error("affect features failed (%s); turn read from its words only", type(exc).__name__)
        if not fut.done():
            fut.set_result(features)

    def turn_words(self, turn_id: int, text: str, words: int) -> None:
        """The turn's final words ('' for noise: no reading). Tags follow once measured."""
        fut = self._features.pop(turn_id, None)
        if self.closed or not text.strip():
            if fut is not None:
                fut.cancel()
            return
        task = asyncio.get_running_loop().create_task(self._read(turn_id, fut, text, words))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, turn_id: int, fut: asyncio.Future | None, text: str, words: int) -> None:
        features = None
        if fut is not None:
            try:
                features = await fut
            except asyncio.CancelledError:
                return
        if features is not None and words:
            from dataclasses import replace

            features = replace(features, words=words)
        if self.closed:
            return
        reading = self.tracker.observe(turn_id, features, text)
        try:
            self._on_reading(reading)
        except Exception:
            log.exception("affect reading for turn %d could not be delivered", turn_id)

    async def wait_idle(self) -> None:
        """Tests and tools: until every started measurement has been read."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self.closed = True
        for fut in self._features.values():
            fut.cancel()
        self._features.clear()
