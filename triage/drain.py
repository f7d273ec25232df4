"""Graceful drain for rolling deploys (deploy/README.md, "Rolling deploys").

On SIGTERM the process stops taking new calls: ``/readyz`` answers 503 (the load balancer stops
sending it new sockets) and a new patient socket is refused with ``draining`` (close 4503,
retryable: the client reconnects and lands on a ready node). Calls already in this process go
on, reconnects to them included, until they end or ``TRIAGE_DRAIN_SECONDS`` pass; then the
process stops. A second SIGTERM stops it at once.

Only under daphne's Twisted reactor: daphne installs its own SIGTERM handler (stop at once)
when the reactor starts, so ours is installed just after that (``callWhenRunning``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

_draining = threading.Event()
_task: asyncio.Task | None = None
_open_sockets = 0  # patient sockets open in this process (the consumer counts them)


def draining() -> bool:
    return _draining.is_set()


def socket_opened() -> None:
    global _open_sockets
    _open_sockets += 1


def socket_closed() -> None:
    global _open_sockets
    _open_sockets -= 1


def busy() -> int:
    """Calls held here (ending ones too: they are still storing) plus open patient sockets (an
    ended call's socket still carries its last messages)."""
    from triage.live import active_call_count

    return active_call_count() + _open_sockets


def reset() -> None:
    """Take calls again (tests; a drain is otherwise one-way)."""
    global _task
    _draining.clear()
    _task = None


def begin(limit_s: float, stop: Callable[[], None], active_calls: Callable[[], int]) -> asyncio.Task:
    """Start draining (on the event loop): refuse new calls, wait for active ones up to
    ``limit_s``, then ``stop()``. Returns the waiting task."""
    global _task
    _draining.set()
    if _task is None:
        logger.warning("draining: no new calls; %d active, waiting up to %.0f s", active_calls(), limit_s)
        _task = asyncio.get_running_loop().create_task(_wait_then_stop(limit_s, stop, active_calls))
    return _task


async def _wait_then_stop(limit_s: float, stop: Callable[[], None], active_calls: Callable[[], int]) -> None:
    deadline = time.monotonic() + limit_s
    # Polling twice a second is enough: calls last minutes, and it costs nothing.
    while (left := active_calls()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    if left:
        logger.warning("drain limit reached with %d call(s)/socket(s) still active; stopping", left)
    else:
        logger.warning("drained: no active calls; stopping")
    stop()


def install_on_daphne(limit_s: Callable[[], float]) -> bool:
    """Replace daphne's SIGTERM handler once its reactor runs. False when not under daphne."""
    if "daphne.server" not in sys.modules or "twisted.internet.reactor" not in sys.modules:
        return False
    from twisted.internet import reactor

    def stop() -> None:
        if reactor.running:
            reactor.stop()

    def install() -> None:
        loop = asyncio.get_event_loop()

        def on_sigterm(signum, frame) -> None:  # signal context: hand over to the loop at once
            loop.call_soon_threadsafe(handle)

        def handle() -> None:
            if draining():
                logger.warning("second SIGTERM while draining: stopping now")
                stop()
                return
            begin(limit_s(), stop, busy)

        signal.signal(signal.SIGTERM, on_sigterm)

    reactor.callWhenRunning(install)
    return True
