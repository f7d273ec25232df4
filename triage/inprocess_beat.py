"""Celery beat's schedule run inside the ASGI process, for the embedded mode.

Without ``REDIS_URL`` Celery runs tasks eagerly and there is no beat process, so nothing would
sweep the outbox, close abandoned sessions (drop-offs) or compute the telemetry aggregates.
When ``TRIAGE["INPROCESS_BEAT"]`` is on (the default when tasks are eager), ``config/asgi.py``
starts one :class:`InProcessBeat` per process: a thread that runs the tasks named in
``CELERY_BEAT_SCHEDULE`` on their intervals, the first run one interval after start, as
beat does. Management commands never import the ASGI module, so ``migrate`` and friends do
not start it; the test suite switches it off (``tests/conftest.py``) unless a test asks.

The jobs run in threads, never on the event loop. Once the server's event loop is known (the
first ASGI call), a job runs in that loop's thread pool through ``sync_to_async``, so what it
sends on the channel layer (``call.end`` to a live call, dashboard refreshes) is delivered by
that loop: the in-memory channel layer of the embedded mode is not thread-safe.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    name: str
    task: str
    interval: float
    due: float


def _interval(schedule: Any) -> float:
    """Seconds between runs: beat schedules here are numbers or timedeltas."""
    seconds = schedule.total_seconds() if hasattr(schedule, "total_seconds") else float(schedule)
    if seconds <= 0:
        raise ValueError(f"in-process beat needs a positive interval, not {schedule!r}")
    return seconds


def _run_task(task_name: str) -> None:
    """One scheduled run, the way an eager Celery call runs it; in whatever thread calls it."""
    from config.celery import app
    from triage import tasks  # noqa: F401  (registers the tasks in this process)

    close_old_connections()
    try:
        app.tasks[task_name].apply(throw=True)
    finally:
        connections.close_all()  # idle until the next run: hold no connection


class InProcessBeat:
    """Runs beat-schedule entries in one thread until :meth:`stop`."""

    def __init__(
        self,
        schedule: Mapping[str, Mapping[str, Any]],
        *,
        run_task: Callable[[str], None] = _run_task,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._clock = clock
        self._run_task = run_task
        start = clock()
        self._entries = [
            _Entry(name, entry["task"], _interval(entry["schedule"]), start + _interval(entry["schedule"]))
            for name, entry in schedule.items()
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: Counter[str] = Counter()  # task name -> completed runs (failed ones too)
        self._failures: Counter[str] = Counter()
        self._ran = threading.Condition()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> InProcessBeat:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="triage-inprocess-beat", daemon=True)
            self._thread.start()
            logger.info(
                "in-process beat started: %s",
                ", ".join(f"{e.task} every {e.interval:g}s" for e in self._entries),
            )
        return self

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop after the job in progress, if any. Returns False if it is still running."""
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("in-process beat: a job is still running after %.0fs", timeout)
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the jobs through this event loop's thread pool from now on (see module doc)."""
        self._loop = loop

    # --- observation (tests, admin) ---------------------------------------------------------
    def runs(self, task_name: str) -> int:
        with self._ran:
            return self._runs[task_name]

    def failures(self, task_name: str) -> int:
        with self._ran:
            return self._failures[task_name]

    def wait_for_runs(self, task_name: str, count: int, timeout: float) -> bool:
        """Block until ``task_name`` has run ``count`` times in all; False on timeout."""
        with self._ran:
            return self._ran.wait_for(lambda: self._runs[task_name] >= count, timeout)

    # --- the thread -----------------------------------------------------------------------
    def _main(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            for entry in self._entries:
                if self._stop.is_set():
                    break
                if entry.due <= now:
                    self._run(entry)
                    # The next run is one interval later; a slow run skips the missed ones.
                    entry.due = max(entry.due + entry.interval, self._clock())
            if self._entries:
                self._stop.wait(max(0.0, min(e.due for e in self._entries) - self._clock()))
            else:
                self._stop.wait()
        connections.close_all()

    def _run(self, entry: _Entry) -> None:
        failed = False
        try:
            loop = self._loop
            if loop is not None and loop.is_running():
                self._run_via_loop(loop, entry.task)
            else:
                self._run_task(entry.task)
        except Exception:
            failed = True
            logger.exception("in-process beat: %s failed", entry.task)
        finally:
            with self._ran:
                self._runs[entry.task] += 1
                self._failures[entry.task] += failed
                self._ran.notify_all()

    def _run_via_loop(self, loop: asyncio.AbstractEventLoop, task_name: str) -> None:
        job = sync_to_async(self._run_task, thread_sensitive=False)
        future = asyncio.run_coroutine_threadsafe(job(task_name), loop)
        while True:
            try:
                future.result(timeout=1.0)
                return
            except concurrent.futures.TimeoutError:
                if not loop.is_running():  # the server is shutting down
                    future.cancel()
                    return


# --- one per process ------------------------------------------------------------------------------

_beat: InProcessBeat | None = None
_beat_lock = threading.Lock()


def start_if_enabled() -> InProcessBeat | None:
    """Start this process's in-process beat if the settings ask for it (once; later calls
    return the same one). Called by config/asgi.py."""
    global _beat
    if not settings.TRIAGE["INPROCESS_BEAT"]:
        return None
    with _beat_lock:
        if _beat is None:
            if not settings.CELERY_TASK_ALWAYS_EAGER:
                logger.warning(
                    "TRIAGE_INPROCESS_BEAT is on with a Celery broker: this process runs the beat "
                    "schedule itself, so do not also run celery beat"
                )
            _beat = InProcessBeat(settings.CELERY_BEAT_SCHEDULE).start()
            atexit.register(stop)
        return _beat


def current() -> InProcessBeat | None:
    return _beat


def stop(timeout: float = 30.0) -> bool:
    """Stop this process's in-process beat (at exit; tests)."""
    global _beat
    with _beat_lock:
        beat, _beat = _beat, None
    return beat.stop(timeout) if beat is not None else True


class AttachLoop:
    """ASGI wrapper that hands the server's event loop to the beat on the first call."""

    def __init__(self, app, beat: InProcessBeat):
        self.app = app
        self.beat = beat
        self._attached = False

    async def __call__(self, scope, receive, send):
        if not self._attached:
            self._attached = True
            self.beat.attach_loop(asyncio.get_running_loop())
        return await self.app(scope, receive, send)
