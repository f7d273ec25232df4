"""The waiting line shared by every web node: a FIFO of callers in Redis (deploy/README.md,
"Admission control").

Keys (``triage:admission:``):

* ``queue``: sorted set, member = session id, score = its ticket (``seq`` incremented once per
  session, so arrival order across all nodes);
* ``entry:<session id>``: hash ``node`` (the process whose socket holds the caller), expiring
  ``ENTRY_TTL_S`` after the holder last renewed it. An entry whose key has expired (its node
  died, its socket went without a goodbye) is dropped from ``queue`` by the next reader;
* ``ticket:<session id>``: hash ``ticket``, ``since`` (epoch ms of the first join), kept
  ``TICKET_TTL_S`` so a caller who reconnects (a dropped socket, a node that died and the
  balancer's next node) gets the same place back instead of the end of the line; ``pinned``
  once a balancer ignored the caller's node hint (see below);
* ``grant:<session id>``: the node that holds a free slot for this caller, expiring
  ``GRANT_TTL_S`` after it was offered.

One line, served in ticket order by whichever node frees a slot: that node offers the slot to
the earliest waiter without a grant (``offer``), wherever its socket is, and holds the slot for
it. A waiter on that node takes it on the same socket; a waiter on another node is told to
reconnect to it (close 4422 with the node's name, which the balancer routes). A caller whose
reconnect did not reach the named node (a balancer that cannot route by it) is ``pinned``: only
its own node offers to it after that. A new caller on a node with a free slot takes it at once
only when no one earlier is waiting for it (``take_turn``). The scripts run atomically in
Redis, so two processes never offer to the same caller and never skip the head.

Without Redis (embedded mode: one process) ``MemoryQueue`` does the same in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PREFIX = "triage:admission:"
QUEUE_KEY = PREFIX + "queue"
SEQ_KEY = PREFIX + "seq"
ENTRY_PREFIX = PREFIX + "entry:"
TICKET_PREFIX = PREFIX + "ticket:"
ENTRY_TTL_S = 10.0  # a node that stops renewing loses its waiters' entries after this
TICKET_TTL_S = 600  # a caller's place is kept this long across reconnects
GRANT_TTL_S = 10.0  # a slot offered to a caller on another node is held this long for its reconnect
REDIS_TIMEOUT_S = 1.0

# Drop members whose entry expired; shared by the scripts below (Lua, run inside Redis).
_LIVE = """
local function live(queue, prefix)
  local out = {}
  for _, m in ipairs(redis.call('zrange', queue, 0, -1)) do
    local node = redis.call('hget', prefix .. m, 'node')
    if node then table.insert(out, {m, node}) else redis.call('zrem', queue, m) end
  end
  return out
end
"""

# KEYS: queue, seq, entry, ticket. ARGV: sid, node, entry ttl ms, now ms, ticket ttl s.
_JOIN = """
local t = redis.call('hget', KEYS[4], 'ticket')
if not t then
  t = redis.call('incr', KEYS[2])
  redis.call('hset', KEYS[4], 'ticket', t, 'since', ARGV[4])
end
redis.call('expire', KEYS[4], ARGV[5])
redis.call('zadd', KEYS[1], t, ARGV[1])
redis.call('hset', KEYS[3], 'node', ARGV[2])
redis.call('pexpire', KEYS[3], ARGV[3])
return tonumber(t)
"""

# Whether waiter e (sid, node) may be offered a slot of ``node``: not offered one already, and
# not pinned to another node. ARGV of the callers: [4] grant prefix, [5] ticket prefix.
_ELIGIBLE = """
local function eligible(e, node)
  if redis.call('exists', ARGV[4] .. e[1]) == 1 then return false end
  return e[2] == node or redis.call('hget', ARGV[5] .. e[1], 'pinned') ~= '1'
end
"""

# KEYS: queue. ARGV: sid, node, entry prefix, grant prefix, ticket prefix. 1: sid is the earliest
# waiter a slot of node may serve (now removed from the line); 0: someone is ahead of it; -1:
# sid is not in the line.
_TAKE = (
    _LIVE
    + _ELIGIBLE
    + """
for _, e in ipairs(live(KEYS[1], ARGV[3])) do
  if eligible(e, ARGV[2]) then
    if e[1] ~= ARGV[1] then break end
    redis.call('zrem', KEYS[1], ARGV[1])
    redis.call('del', ARGV[3] .. ARGV[1])
    return 1
  end
end
if redis.call('zscore', KEYS[1], ARGV[1]) then return 0 end
return -1
"""
)

# KEYS: queue. ARGV: node, entry prefix, grant ttl ms, grant prefix, ticket prefix. Offers a
# free slot of node to the earliest eligible waiter: returns its session id, or false.
_OFFER = (
    _LIVE
    + _ELIGIBLE
    + """
for _, e in ipairs(live(KEYS[1], ARGV[2])) do
  if eligible(e, ARGV[1]) then
    redis.call('set', ARGV[4] .. e[1], ARGV[1], 'px', ARGV[3])
    return e[1]
  end
end
return false
"""
)

# KEYS: grant, ticket. ARGV: node. The grant is node's: spend it and the ticket; returns the
# first join's epoch ms (how long the caller waited), or false.
_USE_GRANT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return false end
local since = redis.call('hget', KEYS[2], 'since') or '0'
redis.call('del', KEYS[1], KEYS[2])
return since
"""

# KEYS: queue. ARGV: sid, entry prefix. Returns {place in the line (0: not in it), waiting on
# every node}.
_PLACE = (
    _LIVE
    + """
local total, place = 0, 0
for _, e in ipairs(live(KEYS[1], ARGV[2])) do
  total = total + 1
  if e[1] == ARGV[1] then place = total end
end
return {place, total}
"""
)

# KEYS: queue. ARGV: entry prefix, ticket prefix. Returns a flat list sid, node, since, ...
_LIST = (
    _LIVE
    + """
local out = {}
for _, e in ipairs(live(KEYS[1], ARGV[1])) do
  table.insert(out, e[1]); table.insert(out, e[2])
  table.insert(out, redis.call('hget', ARGV[2] .. e[1], 'since') or '0')
end
return out
"""
)


@dataclass(frozen=True, slots=True)
class Place:
    position: int  # 1: next, whichever node frees a slot; 0: not in the line
    waiting: int  # callers waiting on every node


@dataclass(frozen=True, slots=True)
class Waiter:
    session_id: str
    node: str
    since: float  # epoch seconds of the first join (kept across reconnects)
    position: int  # in the line (every node)


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisQueue:
    """``prefix``: the key prefix (tests give each line its own)."""

    def __init__(self, url: str, entry_ttl_s: float = ENTRY_TTL_S, prefix: str = PREFIX):
        import redis.asyncio

        self.queue_key, self.seq_key = prefix + "queue", prefix + "seq"
        self.entry_prefix, self.ticket_prefix = prefix + "entry:", prefix + "ticket:"
        self.grant_prefix = prefix + "grant:"
        self.entry_ttl_ms = int(entry_ttl_s * 1000)
        self.redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, decode_responses=True
        )
        self._join = self.redis.register_script(_JOIN)
        self._take = self.redis.register_script(_TAKE)
        self._place = self.redis.register_script(_PLACE)
        self._list = self.redis.register_script(_LIST)
        self._offer = self.redis.register_script(_OFFER)
        self._use_grant = self.redis.register_script(_USE_GRANT)

    async def join(self, session_id: str, node: str) -> int:
        """Enter the line (or renew the entry); the ticket is the caller's, kept across reconnects."""
        keys = [self.queue_key, self.seq_key, self.entry_prefix + session_id, self.ticket_prefix + session_id]
        return int(await self._join(keys, [session_id, node, self.entry_ttl_ms, _now_ms(), TICKET_TTL_S]))

    async def take_turn(self, session_id: str, node: str) -> int:
        args = [session_id, node, self.entry_prefix, self.grant_prefix, self.ticket_prefix]
        return int(await self._take([self.queue_key], args))

    async def offer(self, node: str, ttl_s: float = GRANT_TTL_S) -> str | None:
        """A slot of ``node`` is free: offer it to the earliest eligible waiter (its id), if any."""
        args = [node, self.entry_prefix, int(ttl_s * 1000), self.grant_prefix, self.ticket_prefix]
        return await self._offer([self.queue_key], args) or None

    async def grant(self, session_id: str) -> str | None:
        """The node holding a slot for this caller, if one was offered."""
        return await self.redis.get(self.grant_prefix + session_id)

    async def use_grant(self, session_id: str, node: str) -> float | None:
        """``node`` admits the caller on its grant: spends it and the ticket. Returns the epoch
        seconds the caller first joined, or None when ``node`` holds no grant for them."""
        since = await self._use_grant(
            [self.grant_prefix + session_id, self.ticket_prefix + session_id], [node]
        )
        return None if since is None else float(since) / 1000.0

    async def drop_grant(self, session_id: str) -> None:
        await self.redis.delete(self.grant_prefix + session_id)

    async def pin(self, session_id: str) -> None:
        """The caller's balancer does not route by node: only its own node offers to it now."""
        key = self.ticket_prefix + session_id
        await self.redis.hset(key, "pinned", "1")
        await self.redis.expire(key, TICKET_TTL_S)

    async def place(self, session_id: str, node: str) -> Place:
        position, waiting = await self._place([self.queue_key], [session_id, self.entry_prefix])
        return Place(int(position), int(waiting))

    async def leave(self, session_id: str) -> None:
        """Out of the line now (the ticket is kept: a reconnect gets the same place back)."""
        await self.redis.zrem(self.queue_key, session_id)
        await self.redis.delete(self.entry_prefix + session_id)

    async def forget(self, session_id: str) -> None:
        """Admitted: the ticket is spent."""
        await self.redis.delete(self.ticket_prefix + session_id)

    async def waiters(self) -> list[Waiter]:
        flat = await self._list([self.queue_key], [self.entry_prefix, self.ticket_prefix])
        return _waiters((flat[i], flat[i + 1], float(flat[i + 2]) / 1000.0) for i in range(0, len(flat), 3))

    async def close(self) -> None:
        await self.redis.aclose()


def _waiters(rows) -> list[Waiter]:
    return [Waiter(sid, node, since, i) for i, (sid, node, since) in enumerate(rows, start=1)]


class MemoryQueue:
    """The same line in one process (embedded mode, no Redis); entries never expire here
    because the socket that holds one is in this process and leaves it on its way out, and
    grants need no lifetime (the one node holds the slot until its waiter takes it)."""

    def __init__(self):
        self._seq = 0
        self._line: dict[str, tuple[int, str]] = {}  # sid -> (ticket, node)
        self._tickets: dict[str, tuple[int, float]] = {}  # sid -> (ticket, since)
        self._grants: dict[str, str] = {}  # sid -> node
        self._pinned: set[str] = set()

    def _ordered(self) -> list[tuple[str, str]]:
        return [(sid, node) for sid, (_, node) in sorted(self._line.items(), key=lambda kv: kv[1][0])]

    def _eligible(self, sid: str, node: str, waiter_node: str) -> bool:
        return sid not in self._grants and (waiter_node == node or sid not in self._pinned)

    async def join(self, session_id: str, node: str) -> int:
        if session_id not in self._tickets:
            self._seq += 1
            self._tickets[session_id] = (self._seq, time.time())
        ticket = self._tickets[session_id][0]
        self._line[session_id] = (ticket, node)
        return ticket

    async def take_turn(self, session_id: str, node: str) -> int:
        if session_id not in self._line:
            return -1
        head = next((sid for sid, n in self._ordered() if self._eligible(sid, node, n)), None)
        if head != session_id:
            return 0
        del self._line[session_id]
        return 1

    async def offer(self, node: str, ttl_s: float = GRANT_TTL_S) -> str | None:
        head = next((sid for sid, n in self._ordered() if self._eligible(sid, node, n)), None)
        if head is not None:
            self._grants[head] = node
        return head

    async def grant(self, session_id: str) -> str | None:
        return self._grants.get(session_id)

    async def use_grant(self, session_id: str, node: str) -> float | None:
        if self._grants.get(session_id) != node:
            return None
        del self._grants[session_id]
        _, since = self._tickets.pop(session_id, (0, time.time()))
        self._pinned.discard(session_id)
        return since

    async def drop_grant(self, session_id: str) -> None:
        self._grants.pop(session_id, None)

    async def pin(self, session_id: str) -> None:
        self._pinned.add(session_id)

    async def place(self, session_id: str, node: str) -> Place:
        ordered = [sid for sid, _ in self._ordered()]
        return Place(ordered.index(session_id) + 1 if session_id in ordered else 0, len(ordered))

    async def leave(self, session_id: str) -> None:
        self._line.pop(session_id, None)

    async def forget(self, session_id: str) -> None:
        self._tickets.pop(session_id, None)
        self._pinned.discard(session_id)

    async def waiters(self) -> list[Waiter]:
        return _waiters((sid, node, self._tickets.get(sid, (0, 0.0))[1]) for sid, node in self._ordered())

    async def close(self) -> None:
        return None
