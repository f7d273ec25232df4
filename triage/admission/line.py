"""Admission control: at most ``TRIAGE_MAX_CALLS`` calls in this process; callers over the cap
wait in the line shared by every node (queue.py) and are connected when a slot frees here.

A slot is counted from the admission until the call is gone from the process (LiveCall's
registry: detached calls in their reconnect grace and ending calls still storing count too),
so a call's own reconnects never queue. Between the admission and the call's registration the
slot is held by a ``Slot`` reservation. The waiting caller is told (and hears) the fixed busy
message with their place and the emergency advice (announce.py), again when they move up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings

from triage import channel_outage, drain, metrics, services
from triage import protocol as proto
from triage.channel_groups import DASHBOARD_GROUP, queue_changed
from triage.models import AuditEvent
from triage.node import NODE_ID

from . import announce
from .queue import MemoryQueue, Place, RedisQueue

logger = logging.getLogger(__name__)

POLL_S = 0.2  # a freed slot here is taken this soon (a local check, no Redis round trip)
HEARTBEAT_S = 2.0  # the waiter renews its entry and re-reads its place this often


class Draining(Exception):
    """This process started draining while the caller waited: they reconnect to another node."""


def capacity() -> int:
    """Calls this process takes at once (0: no cap)."""
    return int(settings.TRIAGE["MAX_CALLS"])


_reserved = 0  # admitted here, pipeline not registered yet


@dataclass
class Slot:
    """A place in this process, held from the admission until the call is registered."""

    queued: bool = False
    released: bool = False

    def release(self) -> None:
        global _reserved
        if not self.released:
            self.released = True
            _reserved -= 1


def _reserve(queued: bool = False) -> Slot:
    global _reserved
    _reserved += 1
    return Slot(queued)


def in_use() -> int:
    from triage.live import active_call_count

    return active_call_count() + _reserved


def free_slot() -> bool:
    cap = capacity()
    return cap <= 0 or in_use() < cap


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisQueue] = weakref.WeakKeyDictionary()
_memory = MemoryQueue()


def queue() -> RedisQueue | MemoryQueue:
    """The shared line (Redis, one client per event loop), or this process's own without Redis."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return _memory
    loop = asyncio.get_running_loop()
    if loop not in _queues:
        _queues[loop] = RedisQueue(url)
    return _queues[loop]


async def notify_dashboards() -> None:
    # Never raises: a channel-layer outage holds it (triage/channel_outage.py).
    await channel_outage.group_send(DASHBOARD_GROUP, queue_changed())


async def was_started(session_id: str) -> bool:
    """Whether the call's pipeline ran on some node before (a node that died: this is a move)."""
    from triage import ownership

    registry = ownership.leases()
    if registry is None:
        return False
    try:
        return bool(await registry.redis.exists(ownership.last_owner_key(session_id)))
    except Exception as exc:  # treated as a new call: it may wait
        logger.warning("could not read the call's last owner (%s)", type(exc).__name__)
        return False


async def enter(session_id: str, *, moving: bool = False) -> Slot | None:
    """A new call reaches this process: a slot now, or None (the caller must wait, ``wait``).

    ``moving``: a call resumed from a node that died takes a slot even over the cap (it was
    admitted once; making a caller cut off mid-triage wait again would be worse)."""
    if moving or capacity() <= 0:
        return _reserve()
    if not free_slot():
        metrics.ADMISSIONS.labels(outcome="queued").inc()
        return None
    line = queue()
    try:
        # Free here, but a caller already waiting for this node goes first.
        await line.join(session_id, NODE_ID)
        turn = await line.take_turn(session_id, NODE_ID)
    except Exception as exc:  # Redis away: the cap still holds, the order across nodes does not
        logger.warning("waiting line unavailable (%s): admitting on the local cap", type(exc).__name__)
        turn = 1
    if turn == 1 and free_slot():
        await _forget(line, session_id)
        metrics.ADMISSIONS.labels(outcome="immediate").inc()
        return _reserve()
    metrics.ADMISSIONS.labels(outcome="queued").inc()
    return None


async def _forget(line, session_id: str) -> None:
    try:
        await line.forget(session_id)
    except Exception as exc:  # the ticket expires on its own
        logger.warning("could not clear a waiting-line ticket (%s)", type(exc).__name__)


@dataclass
class Waiting:
    """One caller in the line, on this process's socket."""

    session_id: str
    send_json: announce.SendJson
    send_bytes: announce.SendBytes
    started: float = 0.0
    told: Place | None = None

    async def run(self) -> Slot:
        """Wait for a slot here; tell the caller their place as it changes. Raises Draining."""
        from triage.runtime import get_runtime

        self.started = time.monotonic()
        line = queue()
        runtime = None
        try:
            runtime = await get_runtime()  # loaded already: calls run here
        except Exception as exc:
            logger.warning("waiting line without speech: %s", type(exc).__name__)
        emergency = await asyncio.to_thread(announce.emergency_text)
        output_rate = runtime.config.output_sample_rate if runtime is not None else None
        last_beat = last_spoken = 0.0
        try:
            while True:
                if drain.draining():
                    raise Draining
                if free_slot() and (slot := await self._take(line)) is not None:
                    return slot
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_S:
                    last_beat = now
                    place = await self._place(line)
                    if place is not None and place != self.told:
                        previous = self.told
                        await self._tell(place, emergency, output_rate)
                        if previous is None:
                            await self._record(
                                AuditEvent.Kind.QUEUED, {"position": place.position, "waiting": place.waiting}
                            )
                            last_spoken = now
                            await self._say(runtime, f"{announce.busy_text(place.position)} {emergency}")
                        elif 0 < place.position < previous.position:
                            await self._say(runtime, announce.moved_up_text(place.position))
                    if self.told is not None and now - last_spoken >= announce.REPEAT_S:
                        last_spoken = now
                        await self._say(runtime, f"{announce.busy_text(self.told.position)} {emergency}")
                await asyncio.sleep(POLL_S)
        except BaseException as exc:
            await self._leave(line, "draining" if isinstance(exc, Draining) else "disconnected")
            raise

    async def _take(self, line) -> Slot | None:
        try:
            turn = await line.take_turn(self.session_id, NODE_ID)
            if turn == -1:  # the entry lapsed (a stalled loop): back in at the same ticket
                await line.join(self.session_id, NODE_ID)
                return None
        except Exception as exc:
            logger.warning("waiting line unavailable (%s): admitting on the local cap", type(exc).__name__)
            turn = 1
        if turn != 1:
            return None
        if not free_slot():  # taken meanwhile by a reconnecting call: back in, same place
            await line.join(self.session_id, NODE_ID)
            return None
        slot = _reserve(queued=True)
        try:
            await _forget(line, self.session_id)
            waited = time.monotonic() - self.started
            metrics.ADMISSIONS.labels(outcome="admitted").inc()
            metrics.QUEUE_WAIT.observe(waited)
            await self.send_json(proto.Admitted(round(waited * 1000.0)).to_dict())
            await self._record(AuditEvent.Kind.ADMITTED, {"waited_ms": round(waited * 1000.0)})
            await notify_dashboards()
        except BaseException:  # the socket went as it was admitted: the slot is not taken
            slot.release()
            raise
        return slot

    async def _place(self, line) -> Place | None:
        try:
            await line.join(self.session_id, NODE_ID)  # renews the entry
            return await line.place(self.session_id, NODE_ID)
        except Exception as exc:
            logger.warning("waiting line unavailable (%s)", type(exc).__name__)
            return None

    async def _tell(self, place: Place, emergency: str, output_rate: int | None) -> None:
        first = self.told is None
        self.told = place
        output = None if output_rate is None else proto.output_format(output_rate)
        message = proto.Queued(
            place.position, place.waiting, announce.busy_text(place.position), emergency, output
        )
        await self.send_json(message.to_dict())
        if first:
            await notify_dashboards()

    async def _say(self, runtime, text: str) -> None:
        try:
            await announce.speak(runtime, text, self.send_json, self.send_bytes)
        except Exception as exc:  # the socket is going; the loop ends with it
            logger.debug("could not speak to a waiting caller: %s", type(exc).__name__)

    async def _record(self, kind: str, payload: dict) -> None:
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id, kind, {**payload, "node": NODE_ID}
            )
        except Exception as exc:
            logger.warning(
                "could not record %s for session %s: %s", kind, self.session_id[:8], type(exc).__name__
            )

    async def _leave(self, line, reason: str) -> None:
        try:
            await asyncio.shield(line.leave(self.session_id))
        except BaseException as exc:  # noqa: BLE001 - the entry expires after ENTRY_TTL_S anyway
            logger.warning("could not leave the waiting line (%s)", type(exc).__name__)
        metrics.ADMISSIONS.labels(outcome="left").inc()
        if self.told is not None:
            waited = round((time.monotonic() - self.started) * 1000.0)
            await asyncio.shield(
                self._record(AuditEvent.Kind.QUEUE_LEFT, {"reason": reason, "waited_ms": waited})
            )
        await asyncio.shield(notify_dashboards())
