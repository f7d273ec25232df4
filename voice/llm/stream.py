"""A token stream fed by a worker thread and read on the event loop.

The worker (a llama.cpp generation, or vLLM's engine thread) calls ``push``/``finish`` from its
own thread; they hop onto the loop with ``call_soon_threadsafe`` so the asyncio queue is only
touched on its own loop. ``cancel`` is a ``threading.Event`` the worker checks between tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

_END = object()
_WAKE = object()  # posted by cancel() so a reader blocked on the queue returns at once


@dataclass(slots=True)
class StreamStats:
    """Timings of one generation, in ``time.monotonic()`` seconds (None: did not happen)."""

    submitted: float
    started: float | None = None  # got the model (after any queueing behind other sessions)
    first_token: float | None = None
    finished: float | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV entries were reused (prefix cache)
    completion_tokens: int = 0
    tokens_after_cancel: int = 0  # tokens the worker produced after cancel() was seen set
    cancelled: bool = False
    finish_reason: str | None = None  # stop / length / cancelled / error

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token is None else (self.first_token - self.submitted) * 1000

    @property
    def queue_ms(self) -> float | None:
        return None if self.started is None else (self.started - self.submitted) * 1000

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token is None or self.finished is None or self.completion_tokens < 2:
            return None
        span = self.finished - self.first_token
        return (self.completion_tokens - 1) / span if span > 0 else None


class ThreadedTokenStream:
    """``TokenStream`` whose pieces are produced on another thread.

    Must be created on the event loop that will read it. After ``cancel()`` the iterator ends
    at once (pieces already queued are dropped) and the worker stops before its next token.
    """

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._cancel = threading.Event()
        self._done = asyncio.Event()  # set on the loop when the worker has stopped for good
        self._ended = False
        self.stats = StreamStats(submitted=time.monotonic())
        self.error: BaseException | None = None
        self.on_cancel: list = []  # callables run (on the caller's thread) by cancel()

    # -- worker side (any thread) ----------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def push(self, piece: str) -> bool:
        """Deliver one piece; False when the reader is gone or cancelled (stop generating)."""
        if self._cancel.is_set():
            self.stats.tokens_after_cancel += 1
            return False
        if self.stats.first_token is None:
            self.stats.first_token = time.monotonic()
        return self._post(piece)

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        self.stats.finished = time.monotonic()
        self.stats.finish_reason = "cancelled" if self._cancel.is_set() else reason
        self.stats.cancelled = self._cancel.is_set()
        self.error = error
        self._post(_END)

    def _post(self, item: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._deliver, item)
        except RuntimeError:  # loop closed: the session is gone
            self._cancel.set()
            return False
        return True

    def _deliver(self, item: object) -> None:  # on the loop
        if item is _END:
            self._done.set()
        self._queue.put_nowait(item)

    # -- reader side (event loop) ----------------------------------------------------------

    def cancel(self) -> None:
        if self._cancel.is_set():
            return
        self._cancel.set()
        for callback in self.on_cancel:
            callback()
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, _WAKE)
        except RuntimeError:  # loop closed
            pass

    def __aiter__(self) -> ThreadedTokenStream:
        return self

    async def __anext__(self) -> str:
        if self._ended or self._cancel.is_set():
            raise StopAsyncIteration
        item = await self._queue.get()
        if self._cancel.is_set() or item is _WAKE:
            raise StopAsyncIteration
        if item is _END:
            self._ended = True
            if self.error is not None:
                raise self.error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def wait_closed(self) -> StreamStats:
        """Wait until the worker has stopped (after the end, an error or a cancel)."""
        await self._done.wait()
        return self.stats

    async def text(self) -> str:
        """Convenience: the whole reply."""
        return "".join([piece async for piece in self])
