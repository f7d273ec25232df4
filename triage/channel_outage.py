"""Living through a channel-layer (Redis) outage.

The voice pipeline, the rules and the database writes of a call run in this process and do
not need the channel layer; only what goes to clinician dashboards does. So a failed layer
operation never ends a call or a stored event:

* :data:`health` reports an outage once: one WARNING naming what failed when it starts, one
  INFO when an operation succeeds again (not a traceback per message).
* :func:`group_send` holds a broadcast that failed, in order, and a retry task delivers the
  held ones once the layer answers again (coalescing ``session.changed`` per session). A
  restarted Redis has forgotten the groups: dashboards join again within ``RETRY_SECONDS`` of
  its return (triage/consumers/dashboard.py), so the held broadcasts wait ``REJOIN_SECONDS``
  after the first answer, or they would reach an empty group.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from typing import Any

from channels.layers import get_channel_layer

from triage.channel_groups import SESSION_CHANGED

logger = logging.getLogger(__name__)

RETRY_SECONDS = 0.25
REJOIN_SECONDS = 0.5
PROBE_GROUP = "channel-outage-probe"  # no members: a send to it is a cheap round trip
# More held broadcasts than this and the oldest are dropped (counted): a dashboard that
# reconnects reads every open alert from the database anyway.
MAX_HELD = 10_000


class LayerHealth:
    """Process-wide: is the channel layer up? Logs the transitions, not every failure."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.failures = 0
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            logger.warning(
                "channel layer unavailable: %s failed (%s: %s); calls go on, dashboard updates are "
                "held and retried until it returns",
                what,
                type(exc).__name__,
                str(exc)[:200],
            )

    def ok(self) -> None:
        if self.down_since is not None:
            logger.info(
                "channel layer back after %.1f s (%d failed operations meanwhile)",
                time.monotonic() - self.down_since,
                self.failures,
            )
            self.down_since = None
            self.failures = 0


health = LayerHealth()


class HeldBroadcasts:
    """Broadcasts waiting for the layer, for one event loop, delivered in order by one task."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.task: asyncio.Task | None = None
        self.dropped = 0

    def hold(self, group: str, message: dict[str, Any]) -> None:
        if message.get("type") == SESSION_CHANGED and any(
            g == group
            and m.get("type") == SESSION_CHANGED
            and m.get("session_id") == message.get("session_id")
            for g, m in self.queue
        ):
            return  # the row is re-read from the database: one pending refresh per session will do
        if len(self.queue) >= MAX_HELD:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append((group, message))
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._deliver(), name="held-broadcasts")

    async def _deliver(self) -> None:
        while self.queue:
            await asyncio.sleep(RETRY_SECONDS)
            layer = get_channel_layer()
            if layer is not None:
                try:
                    await layer.group_send(PROBE_GROUP, {"type": "probe"})
                except Exception as exc:
                    health.failed("dashboard broadcast", exc)
                    continue
                health.ok()
                await asyncio.sleep(REJOIN_SECONDS)
            while self.queue and layer is not None:
                group, message = self.queue[0]
                try:
                    await layer.group_send(group, message)
                except Exception as exc:
                    health.failed("dashboard broadcast", exc)
                    break
                self.queue.popleft()
            else:
                if self.dropped:
                    logger.warning(
                        "%d held dashboard broadcasts were dropped (over %d)", self.dropped, MAX_HELD
                    )
                    self.dropped = 0
                self.queue.clear()  # no layer at all: nothing to deliver to


_held: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HeldBroadcasts] = weakref.WeakKeyDictionary()


def held() -> HeldBroadcasts:
    loop = asyncio.get_running_loop()
    if loop not in _held:
        _held[loop] = HeldBroadcasts()
    return _held[loop]


async def group_send(group: str, message: dict[str, Any]) -> bool:
    """Send to a channel group; never raises. Returns False when the message was held for
    later delivery (the layer is failing, or earlier messages still wait: order is kept)."""
    layer = get_channel_layer()
    if layer is None:
        return True
    pending = held()
    if pending.queue:
        pending.hold(group, message)
        return False
    try:
        await layer.group_send(group, message)
    except Exception as exc:
        health.failed("dashboard broadcast", exc)
        pending.hold(group, message)
        return False
    health.ok()
    return True
