"""Admission control: at most ``TRIAGE_MAX_CALLS`` calls in this process; callers over the cap
wait in the line shared by every node (queue.py) and are served in arrival order by whichever
node frees a slot: this process's dispatcher offers each of its free slots to the earliest
waiter and holds the slot for it; a waiter on this node takes it on its socket, one on another
node is sent here (``Redirect``: close 4422 with this node's name, routed by the balancer) and
admitted by ``enter`` on its reconnect.

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
from .queue import GRANT_TTL_S, MemoryQueue, Place, RedisQueue

logger = logging.getLogger(__name__)

POLL_S = 0.2  # a freed slot here is taken this soon (a local check, no Redis round trip)
HEARTBEAT_S = 2.0  # the waiter renews its entry and re-reads its place this often
DISPATCH_S = 0.5  # a node's free slot is offered to the line this soon (one Redis script a tick)


class Draining(Exception):
    """This process started draining while the caller waited: they reconnect to another node."""


class Redirect(Exception):
    """A slot freed on another node and is held there for this caller: they reconnect to it."""

    def __init__(self, node: str):
        super().__init__(node)
        self.node = node


def capacity() -> int:
    """Calls this process takes at once (0: no cap)."""
    return int(settings.TRIAGE["MAX_CALLS"])


_reserved = 0  # admitted here, pipeline not registered yet


@dataclass
class Slot:
    """A place in this process, held from the admission until the call is registered."""

    queued: bool = False
    released: bool = False
    waited_ms: int | None = None  # admitted here from the line on another node: how long it waited

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


# Slots this process offered to waiters (queue.offer), held until taken or GRANT_TTL_S passes.
_offered: dict[str, tuple[Slot, float]] = {}  # session id -> (slot, monotonic deadline)
_local_waiters = 0  # callers waiting on this process's sockets
_dispatchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()

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


async def dispatch_once(line) -> list[str]:
    """One tick of the dispatcher: let lapsed offers go, then offer each free slot here to the
    earliest waiter in the line (any node). Returns the session ids offered a slot now."""
    now = time.monotonic()
    for session_id, (slot, deadline) in list(_offered.items()):
        if now >= deadline or await line.grant(session_id) != NODE_ID:  # never came, or pinned elsewhere
            _offered.pop(session_id, None)
            slot.release()
            await line.drop_grant(session_id)
    offered: list[str] = []
    if drain.draining() or capacity() <= 0:
        return offered
    while free_slot() and (session_id := await line.offer(NODE_ID, GRANT_TTL_S)) is not None:
        _offered[session_id] = (_reserve(queued=True), now + GRANT_TTL_S)
        offered.append(session_id)
    return offered


async def _dispatch_loop(forever: bool) -> None:
    failing = False
    while forever or _offered or _local_waiters:
        await asyncio.sleep(DISPATCH_S)
        try:
            await dispatch_once(queue())
            failing = False
        except Exception as exc:  # Redis away: waiters fall back to the local cap meanwhile
            if not failing:
                logger.warning("could not offer free slots to the waiting line (%s)", type(exc).__name__)
            failing = True


def start_dispatcher(forever: bool = False) -> asyncio.Task:
    """The dispatcher of this event loop. A web process starts it for good (``forever``: slots
    freed here must reach waiters on other nodes); elsewhere (one process, the tests) it runs
    while callers wait here or an offer is held."""
    loop = asyncio.get_running_loop()
    task = _dispatchers.get(loop)
    if task is None or task.done():
        task = _dispatchers[loop] = loop.create_task(_dispatch_loop(forever), name="admission-dispatch")
    return task


def start_on_daphne() -> bool:
    """Start the dispatcher once daphne's reactor runs. False when not under daphne."""
    import sys

    if "daphne.server" not in sys.modules or "twisted.internet.reactor" not in sys.modules:
        return False
    from twisted.internet import reactor

    def start() -> None:
        asyncio.get_event_loop().call_soon(start_dispatcher, True)

    reactor.callWhenRunning(start)
    return True


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


async def enter(session_id: str, *, moving: bool = False, hint: str = "") -> Slot | None:
    """A new call reaches this process: a slot now, or None (the caller must wait, ``wait``).

    ``moving``: a call resumed from a node that died takes a slot even over the cap (it was
    admitted once; making a caller cut off mid-triage wait again would be worse). ``hint``: the
    node the caller was sent to (``Redirect``); a slot held here for them is theirs."""
    if moving or capacity() <= 0:
        return _reserve()
    line = queue()
    if (held := _offered.pop(session_id, None)) is not None:
        return await _admit_offered(line, session_id, held[0])
    if hint and hint != NODE_ID:
        # Sent to another node, but the balancer brought the socket here: it cannot route by
        # node, so only this node serves the caller from now on (no offer-and-redirect loop).
        try:
            await line.pin(session_id)
            await line.drop_grant(session_id)
        except Exception as exc:
            logger.warning("could not pin a waiting caller to its node (%s)", type(exc).__name__)
    if not free_slot():
        metrics.ADMISSIONS.labels(outcome="queued").inc()
        return None
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


async def _admit_offered(line, session_id: str, slot: Slot) -> Slot:
    """The caller reconnected here to the slot this process held for them."""
    since = None
    try:
        since = await line.use_grant(session_id, NODE_ID)
        await line.leave(session_id)
    except Exception as exc:  # the slot is held here all the same
        logger.warning("could not spend a waiting-line grant (%s)", type(exc).__name__)
    waited = max(0.0, time.time() - since) if since else 0.0
    slot.waited_ms = round(waited * 1000.0)
    metrics.ADMISSIONS.labels(outcome="admitted").inc()
    metrics.QUEUE_WAIT.observe(waited)
    await record(session_id, AuditEvent.Kind.ADMITTED, {"waited_ms": slot.waited_ms, "sent_here": True})
    await notify_dashboards()
    return slot


async def record(session_id: str, kind: str, payload: dict) -> None:
    try:
        await database_sync_to_async(services.record_audit)(session_id, kind, {**payload, "node": NODE_ID})
    except Exception as exc:
        logger.warning("could not record %s for session %s: %s", kind, session_id[:8], type(exc).__name__)


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
        """Wait for a slot; tell the caller their place as it changes. Raises Draining, or
        Redirect when the slot offered to them is on another node."""
        global _local_waiters
        _local_waiters += 1
        try:
            start_dispatcher()
            return await self._run()
        finally:
            _local_waiters -= 1

    async def _run(self) -> Slot:
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
                if (slot := await self._take(line)) is not None:
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
            reason = {Draining: "draining", Redirect: "sent_to_node"}.get(type(exc), "disconnected")
            await self._leave(line, reason)
            raise

    async def _take(self, line) -> Slot | None:
        """The slot offered to this caller here, if any (raises Redirect for another node's)."""
        try:
            node = await line.grant(self.session_id)
        except Exception as exc:
            if not free_slot():
                return None
            logger.warning("waiting line unavailable (%s): admitting on the local cap", type(exc).__name__)
            return await self._admitted(line, _reserve(queued=True))
        if node is None:
            return None
        if node != NODE_ID:
            raise Redirect(node)
        held = _offered.pop(self.session_id, None)
        if held is None:  # lapsed here a moment ago; the grant key goes with it
            return None
        try:
            await line.use_grant(self.session_id, NODE_ID)
            await line.leave(self.session_id)
        except BaseException:
            held[0].release()
            raise
        return await self._admitted(line, held[0])

    async def _admitted(self, line, slot: Slot) -> Slot:
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
        await record(self.session_id, kind, payload)

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
