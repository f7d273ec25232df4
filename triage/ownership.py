"""Call ownership across web nodes: one lease per live call in Redis (deploy/README.md).

A call's pipeline lives in one process. Its lease, ``triage:call-owner:<session id>`` = the
owner's node id, is taken with ``SET NX PX`` when the pipeline starts, renewed by the owner
every ``RENEW_S`` and released when the call ends; it expires ``LEASE_S`` after the owner stops
renewing (killed, crashed, cut off from Redis). A patient socket that reaches a process without
the call asks for the lease first:

* held by another node: refused with ``call_elsewhere`` (close 4421, retryable), naming the
  owner's node (the retry goes there, ``?node=``) and when the lease lapses if not renewed
  (``retry_ms``: a dead owner's call can be taken then), so a second pipeline never starts;
* free, and no other node ever held it: this node takes it and starts the call;
* free, but another node held it before (its owner died mid-call): this node takes it,
  records the move in the audit chain (``call_moved``) and resumes the call from what is
  stored (triage/resume.py).

Without ``REDIS_URL`` (embedded mode: one process) every claim is granted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import weakref
from dataclasses import dataclass

from django.conf import settings

from .node import NODE_ID

logger = logging.getLogger(__name__)

# What a lease holds: the node's name plus this process incarnation, so a node restarted under
# the same TRIAGE_NODE_ID (its calls' pipelines gone with the old process) is a different owner.
INSTANCE = f"{NODE_ID}/{os.getpid()}/{secrets.token_hex(4)}"

# A dead owner's calls are taken over LEASE_S - RENEW_S to LEASE_S after it stopped (6-8 s): that
# is most of a caller's cut-off. A live owner loses a lease only after missing three renewals
# in a row (6 s: Redis away, or its event loop stalled that long); was 15/5 (10-15 s).
LEASE_S = 8.0
RENEW_S = 2.0
LAST_OWNER_TTL_S = 24 * 3600  # longer than any session token
REDIS_TIMEOUT_S = 1.0

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def node_of(owner: str | None) -> str | None:
    """The node name (TRIAGE_NODE_ID, what the balancer routes ``?node=`` by) of a lease holder."""
    return owner.split("/", 1)[0] if owner else None


def owner_key(session_id: str) -> str:
    return f"triage:call-owner:{session_id}"


def last_owner_key(session_id: str) -> str:
    return f"triage:call-last-owner:{session_id}"


@dataclass(frozen=True, slots=True)
class Claim:
    granted: bool
    owner: str | None  # the node holding the lease now (this one when granted)
    moved_from: str | None = None  # granted: another node held this call before (it died)
    retry_ms: int | None = None  # refused: the owner's lease lapses in this long unless renewed


class Leases:
    """This process's call leases on one event loop (daphne has one)."""

    def __init__(self, url: str, node: str = INSTANCE, lease_s: float = LEASE_S, renew_s: float = RENEW_S):
        import redis.asyncio

        self.node = node
        self.lease_ms = int(lease_s * 1000)
        self.renew_s = renew_s
        self.redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, decode_responses=True
        )
        self.held: set[str] = set()
        self.stopping: set[asyncio.Task] = set()  # calls being stopped here after a lost lease
        self._renewer: asyncio.Task | None = None

    async def claim(self, session_id: str) -> Claim:
        key = owner_key(session_id)
        for _ in range(2):  # a lease that expires between SET and GET: try once more
            if await self.redis.set(key, self.node, nx=True, px=self.lease_ms):
                break
            owner = await self.redis.get(key)
            if owner == self.node:  # ours already (this node id restarted): renew it
                await self.redis.pexpire(key, self.lease_ms)
                break
            if owner is not None:
                left = await self.redis.pttl(key)
                return Claim(False, owner, retry_ms=left if left >= 0 else None)
        else:
            return Claim(False, None)
        previous = await self.redis.get(last_owner_key(session_id))
        self.held.add(session_id)
        self._ensure_renewer()
        return Claim(True, self.node, previous if previous and previous != self.node else None)

    async def mark_started(self, session_id: str) -> None:
        """The call's pipeline runs here now: a later owner of this session is a move."""
        await self.redis.set(last_owner_key(session_id), self.node, ex=LAST_OWNER_TTL_S)

    async def release(self, session_id: str) -> None:
        self.held.discard(session_id)
        await self.redis.eval(_RELEASE, 1, owner_key(session_id), self.node)

    async def renew_once(self, is_live) -> list[str]:
        """Renew every held lease whose call is live, release the others; returns lost ones."""
        lost = []
        for session_id in list(self.held):
            if not is_live(session_id):
                await self.release(session_id)
            elif not await self.redis.eval(_RENEW, 1, owner_key(session_id), self.node, self.lease_ms):
                self.held.discard(session_id)
                lost.append(session_id)
                logger.warning(
                    "lost the lease of live call %s to another node: stopping it here", session_id[:8]
                )
        return lost

    async def renew_and_stop_lost(self) -> list[str]:
        """One renewal round; a live call whose lease another node took is stopped here
        without ending it (LiveCall.abandon): that node runs it now."""
        from .live import LiveCall

        lost = await self.renew_once(lambda sid: LiveCall.get(sid) is not None)
        for session_id in lost:
            if (call := LiveCall.get(session_id)) is not None:
                # In its own task: a writer waiting for the database must not hold up renewals.
                task = asyncio.get_running_loop().create_task(call.abandon(), name="abandon-call")
                self.stopping.add(task)
                task.add_done_callback(self.stopping.discard)
        return lost

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="call-leases")

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(self.renew_s)
            try:
                await self.renew_and_stop_lost()
            except Exception as exc:  # Redis away: keep the calls; leases lapse after LEASE_S
                logger.warning("could not renew call leases: %s", type(exc).__name__)


_leases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Leases] = weakref.WeakKeyDictionary()


def leases() -> Leases | None:
    """This loop's leases; None in embedded mode (no Redis: one process, nothing to share)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    loop = asyncio.get_running_loop()
    if loop not in _leases:
        _leases[loop] = Leases(url)
    return _leases[loop]


async def claim(session_id: str) -> Claim:
    """Ask for a call's lease before starting its pipeline here. Redis unreachable: granted
    with a warning (the balancer's routing by token still keeps one call on one node)."""
    registry = leases()
    if registry is None:
        return Claim(True, INSTANCE)
    try:
        return await registry.claim(session_id)
    except Exception as exc:
        logger.warning("call lease unavailable (%s): starting the call without one", type(exc).__name__)
        return Claim(True, INSTANCE)


async def mark_started(session_id: str) -> None:
    registry = leases()
    if registry is None:
        return
    try:
        await registry.mark_started(session_id)
    except Exception as exc:  # only a later move goes unnoticed
        logger.warning("could not record the call's owner (%s)", type(exc).__name__)
