"""The session's outbox: every event leaves through one ordered queue and one task.

Stages never await the host's ``emit`` themselves (a slow websocket must not stall VAD or
inference); they ``put`` and move on. A barge-in ``purge``s the interrupted reply's queued
audio so ``AgentInterrupted`` is not stuck behind seconds of stale audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from voice.events import VoiceEvent

log = logging.getLogger(__name__)

Emit = Callable[[VoiceEvent], Awaitable[None]]


class Outbox:
    def __init__(self, emit: Emit, *, on_sent: Callable[[VoiceEvent], None] | None = None):
        self._emit = emit
        self._on_sent = on_sent
        self._queue: deque[VoiceEvent] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._task: asyncio.Task | None = None
        self.emit_errors = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-outbox")

    def put(self, event: VoiceEvent) -> None:
        if self._closed:
            return
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    def purge(self, predicate: Callable[[VoiceEvent], bool]) -> int:
        kept = [e for e in self._queue if not predicate(e)]
        dropped = len(self._queue) - len(kept)
        self._queue.clear()
        self._queue.extend(kept)
        if not self._queue:
            self._idle.set()
        return dropped

    async def drain(self) -> None:
        """Wait until every queued event has been handed to ``emit``."""
        await self._idle.wait()

    async def close(self) -> None:
        """Deliver what is queued, then stop."""
        await self.drain()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            event = self._queue.popleft()
            try:
                await self._emit(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # the host's problem; keep the session alive and ordered
                self.emit_errors += 1
                if self.emit_errors <= 3:
                    log.exception("emit failed for %s", type(event).__name__)
            if self._on_sent is not None:
                self._on_sent(event)
