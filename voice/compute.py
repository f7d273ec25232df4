"""Shared, bounded, fair compute for blocking model calls (ASR decodes, TTS, LLM steps).

One ``ComputePool`` per process (a fixed set of worker threads, sized to the cores); each
session gets a ``SessionCompute`` handle. Workers pick jobs round-robin across sessions,
must-run jobs before skippable ones, and a session never holds more than
``max_running_per_session`` workers at once, so one busy session cannot starve the others.
Skippable jobs never take the last free worker (``reserve_for_must_run``): a final decode
that comes in while partials run starts at once instead of waiting behind them.
Jobs are either

* skippable (partial ASR decodes): a newer job with the same ``key`` replaces a queued
  older one; one submitted while must-run work waits anywhere, one that waited longer than
  ``skippable_max_wait_s``, or the oldest of a full session queue is dropped; a dropped job
  raises ``Skipped`` in the awaiting coroutine (or its future is cancelled, for executor
  callers). Being behind costs freshness, never correctness.
* not skippable (final decodes, synthesis, generation): always queued, never dropped.

Cancelling the awaiting coroutine removes a job that has not started yet; a running job
finishes in its thread (model calls are not interruptible) and its result is discarded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Skipped(Exception):
    """A skippable job was dropped (replaced by a newer one, or its session was behind)."""


class PoolClosed(RuntimeError):
    pass


@dataclass(eq=False)
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: concurrent.futures.Future
    skippable: bool
    key: str | None
    skip_as_cancel: bool = False  # executor-style callers see a skip as a cancelled future
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class PoolStats:
    submitted: int = 0
    completed: int = 0
    skipped: int = 0
    cancelled: int = 0
    max_queue_wait_s: float = 0.0


class ComputePool:
    def __init__(
        self,
        workers: int = 2,
        *,
        session_queue_limit: int = 4,
        max_running_per_session: int = 2,
        skippable_max_wait_s: float = 0.3,
        reserve_for_must_run: int = 1,
        name: str = "voice-compute",
    ):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self.session_queue_limit = max(1, session_queue_limit)
        self.max_running_per_session = max(1, max_running_per_session)
        self.skippable_max_wait_s = skippable_max_wait_s
        # Workers partials may never occupy (none with a single worker: partials would never run).
        self.max_running_skippable = max(1, workers - max(0, reserve_for_must_run))
        self._running_skippable = 0
        self.stats = PoolStats()
        self._cv = threading.Condition()
        self._ring: deque[SessionCompute] = deque()  # sessions, in round-robin order
        self._closed = False
        self._ids = itertools.count(1)
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for th in self._threads:
            th.start()

    # --- sessions -----------------------------------------------------------------------

    def session(self, name: str | None = None) -> SessionCompute:
        with self._cv:
            if self._closed:
                raise PoolClosed("compute pool is closed")
            sc = SessionCompute(self, name or f"session-{next(self._ids)}")
            self._ring.append(sc)
            return sc

    def _detach(self, sc: SessionCompute) -> None:
        with self._cv:
            for job in sc._queue:
                if job.future.cancel():
                    self.stats.cancelled += 1
            sc._queue.clear()
            try:
                self._ring.remove(sc)
            except ValueError:
                pass

    # --- submission ---------------------------------------------------------------------

    def _submit(
        self,
        sc: SessionCompute,
        fn: Callable[..., Any],
        args,
        kwargs,
        skippable: bool,
        key: str | None,
        skip_as_cancel: bool = False,
    ) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        job = _Job(fn, args, kwargs, fut, skippable, key, skip_as_cancel)
        dropped: list[_Job] = []
        with self._cv:
            if self._closed or sc._closed:
                raise PoolClosed("compute pool or session is closed")
            if skippable and key is not None:
                for old in [j for j in sc._queue if j.skippable and j.key == key]:
                    sc._queue.remove(old)
                    dropped.append(old)
            if skippable and any(
                not j.skippable and not j.future.cancelled() for other in self._ring for j in other._queue
            ):
                dropped.append(job)  # must-run work is waiting somewhere: no CPU for freshness
            elif len(sc._queue) >= self.session_queue_limit:
                victim = next((j for j in sc._queue if j.skippable), None)
                if victim is not None:
                    sc._queue.remove(victim)
                    dropped.append(victim)
                elif skippable:
                    dropped.append(job)  # queue full of must-run work: drop the new partial
            if job not in dropped:
                sc._queue.append(job)
                self.stats.submitted += 1
            self.stats.skipped += len(dropped)
            self._cv.notify()
        for d in dropped:
            if d.skip_as_cancel:
                d.future.cancel()
            elif d.future.set_running_or_notify_cancel():
                d.future.set_exception(Skipped(d.key or "job"))
        return fut

    # --- workers ------------------------------------------------------------------------

    def _pick(self) -> tuple[SessionCompute, _Job] | None:
        """Round-robin over sessions with a free slot: must-run jobs (finals, synthesis) of any
        session first, then skippable ones (partials), so partials only use spare capacity.
        A skippable job that waited past ``skippable_max_wait_s`` is stale: dropped."""
        self._drop_stale()
        for want_skippable in (False, True):
            if want_skippable and self._running_skippable >= self.max_running_skippable:
                break  # the last free worker stays for a final / synthesis (4 callers, 2 cores)
            for i in range(len(self._ring)):
                sc = self._ring[i]
                if sc._running >= self.max_running_per_session:
                    continue
                job = next((j for j in sc._queue if j.skippable == want_skippable), None)
                if job is not None:
                    sc._queue.remove(job)
                    self._ring.rotate(-(i + 1))  # this session goes to the back of the ring
                    return sc, job
        return None

    def _drop_stale(self) -> None:
        now = time.perf_counter()
        for sc in self._ring:
            for job in [
                j for j in sc._queue if j.skippable and now - j.queued_at > self.skippable_max_wait_s
            ]:
                sc._queue.remove(job)
                self.stats.skipped += 1
                if job.skip_as_cancel:
                    job.future.cancel()
                elif job.future.set_running_or_notify_cancel():
                    job.future.set_exception(Skipped(job.key or "job"))

    def _worker(self) -> None:
        while True:
            with self._cv:
                picked = self._pick()
                while picked is None:
                    if self._closed:
                        return
                    self._cv.wait()
                    picked = self._pick()
                sc, job = picked
                sc._running += 1
                self._running_skippable += job.skippable
                wait = time.perf_counter() - job.queued_at
                self.stats.max_queue_wait_s = max(self.stats.max_queue_wait_s, wait)
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        result = job.fn(*job.args, **job.kwargs)
                    except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
                        job.future.set_exception(exc)
                    else:
                        job.future.set_result(result)
                else:
                    self.stats.cancelled += 1
            finally:
                with self._cv:
                    sc._running -= 1
                    self._running_skippable -= job.skippable
                    self.stats.completed += 1
                    self._cv.notify_all()

    def close(self, wait: bool = True) -> None:
        with self._cv:
            self._closed = True
            for sc in list(self._ring):
                for job in sc._queue:
                    job.future.cancel()
                sc._queue.clear()
            self._cv.notify_all()
        if wait:
            for th in self._threads:
                th.join(timeout=30)


class SessionCompute:
    """A session's handle on the shared pool. Awaitable jobs; ``close`` drops queued ones."""

    def __init__(self, pool: ComputePool, name: str):
        self.pool = pool
        self.name = name
        self._queue: deque[_Job] = deque()
        self._running = 0
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """``concurrent.futures.Executor``-style submit (non-skippable)."""
        return self.pool._submit(self, fn, args, kwargs, False, None)

    def submit_skippable(self, key: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any):
        return self.pool._submit(self, fn, args, kwargs, True, key)

    async def run(
        self, fn: Callable[..., T], /, *args: Any, skippable: bool = False, key: str | None = None, **kwargs
    ) -> T:
        fut = self.pool._submit(self, fn, args, kwargs, skippable, key if skippable else None)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()  # now, not a loop turn later: a queued job must never start
            raise

    async def iterate(self, make_iter: Callable[[], Iterator[T]]) -> list[T]:
        """Run a blocking generator to completion in one job (e.g. one clause of synthesis)."""
        return await self.run(lambda: list(make_iter()))

    def cancel_queued(self, match: Callable[[Callable[..., Any]], bool]) -> int:
        """Cancel this session's queued (not yet running) jobs whose callable ``match``es:
        work that became stale before it started (a pause decode once the patient resumed)."""
        with self.pool._cv:
            victims = [j for j in self._queue if match(j.fn)]
            for job in victims:
                self._queue.remove(job)
        for job in victims:
            if job.future.cancel():
                self.pool.stats.cancelled += 1
        return len(victims)

    def executor(self, classify: Callable[[Callable[..., Any]], str | None]) -> SessionExecutor:
        """A ``concurrent.futures.Executor`` view for code that takes an executor (the
        streaming transcriber): ``classify(fn)`` returns a skip key for skippable jobs, or
        None for must-run ones. A skipped job's future is cancelled."""
        return SessionExecutor(self, classify)

    def close(self) -> None:
        self._closed = True
        self.pool._detach(self)


class SessionExecutor(concurrent.futures.Executor):
    def __init__(self, compute: SessionCompute, classify: Callable[[Callable[..., Any]], str | None]):
        self._compute = compute
        self._classify = classify

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        key = self._classify(fn)
        return self._compute.pool._submit(self._compute, fn, args, kwargs, key is not None, key, True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """The pool is shared: shutting a view down does nothing."""
