"""The waiting line across two real server processes (triage/admission/): two daphne processes
with a cap of one call each, real models (the rules' words only: no LLM), the real PostgreSQL
(the test database) and Redis. The line is one: a caller's place counts callers waiting on
both processes; a freed slot goes to the longest-waiting caller on either process (one on the
other process is sent to it: close 4422 naming the node, and admitted there on the reconnect);
and when a process dies, its waiting caller reconnects to the other one and keeps their place
ahead of someone who came later.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from tests.browser.harness import Daphne, database_url
from triage import services
from triage.admission.queue import RedisQueue

pytestmark = [pytest.mark.models, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def nodes(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the two-process admission test needs PostgreSQL (DATABASE_URL=postgres://...)")
    common = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_ENV": "development",
        "TRIAGE_PRELOAD_MODELS": "1",
        "VOICE_LLM_BACKEND": "none",  # the rules' words only: a shorter model load
        "TRIAGE_MAX_CALLS": "1",
    }
    servers = [
        Daphne({**common, "TRIAGE_NODE_ID": name}, f"{name}-daphne.log") for name in ("fair1", "fair2")
    ]
    try:
        for server in servers:
            server.wait_ready(timeout=600, path="/readyz")
        yield servers
    finally:
        for server in servers:
            server.stop()


class Caller:
    """A patient socket on one server; every JSON message kept with its arrival time."""

    def __init__(self, server: Daphne, token: str):
        self.server, self.token = server, token
        self.messages: list[tuple[float, dict]] = []
        self.ws = None
        self._reader: asyncio.Task | None = None

    async def connect(self, server: Daphne | None = None, query: str = "") -> Caller:
        import websockets

        self.server = server or self.server
        url = self.server.base_url.replace("http", "ws", 1) + f"/ws/patient/{self.token}/{query}"
        self.ws = await websockets.connect(url, origin="http://127.0.0.1")
        self._reader = asyncio.ensure_future(self._read(self.ws))
        return self

    async def _read(self, ws) -> None:
        try:
            async for data in ws:
                if isinstance(data, str):
                    self.messages.append((time.monotonic(), json.loads(data)))
        except Exception:  # the server went away (a killed process): the test reconnects
            pass

    async def next(self, kind: str, timeout: float = 120, after: int = 0, **fields) -> tuple[int, dict]:
        """The first message of ``kind`` (with ``fields``) at index ``after`` or later."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (_, m) in enumerate(self.messages[after:], start=after):
                if m["type"] == kind and all(m.get(k) == v for k, v in fields.items()):
                    return i, m
            assert time.monotonic() < deadline, f"no {kind} {fields}: {[m for _, m in self.messages][-8:]}"
            await asyncio.sleep(0.05)  # messages arrive on the reader task; bounded above

    async def closed(self, timeout: float = 30) -> int:
        """The close code, once the server has closed the socket."""
        await asyncio.wait_for(self._reader, timeout)
        return self.ws.close_code

    def last(self, kind: str) -> dict:
        return [m for _, m in self.messages if m["type"] == kind][-1]

    def at(self, index: int) -> float:
        return self.messages[index][0]

    async def end(self) -> None:
        await self.ws.send(json.dumps({"type": "end"}))
        await self.next("ended", 60)
        await self.ws.close()


async def new_token() -> str:
    _, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    return token


async def test_one_line_across_two_processes_served_in_order_through_a_process_dying(nodes):
    web1, web2 = nodes
    # An idle process offers its free line to a caller waiting on any node, unprompted (its
    # dispatcher runs from start-up): here one on a node that has no free line.
    line = RedisQueue(settings.REDIS_URL)
    try:
        await line.join("on-a-full-node", "full")
        deadline = time.monotonic() + 10
        while (offered_by := await line.grant("on-a-full-node")) is None:
            assert time.monotonic() < deadline, "no idle process offered its line"
            await asyncio.sleep(0.1)  # polling Redis, bounded above
        assert offered_by in ("fair1", "fair2")
        await line.leave("on-a-full-node")  # they hang up: the held line goes back
        await line.forget("on-a-full-node")
        await line.drop_grant("on-a-full-node")
        await asyncio.sleep(1.5)  # three dispatcher ticks: the process lets its held line go
    finally:
        await line.close()

    a = await Caller(web1, await new_token()).connect()
    await a.next("ready", 180)
    b = await Caller(web2, await new_token()).connect()
    await b.next("ready", 180)

    # Both processes are full. C waits on web1, D on web2, E (the latest) on web1.
    c = await Caller(web1, await new_token()).connect()
    assert (await c.next("queued", 30))[1]["position"] == 1
    d = await Caller(web2, await new_token()).connect()
    _, queued = await d.next("queued", 30)
    assert queued["position"] == 2 and queued["waiting"] == 2  # one line: behind web1's caller
    e = await Caller(web1, await new_token()).connect()
    _, queued = await e.next("queued", 30)
    assert queued["position"] == 3 and queued["waiting"] == 3

    # web2's call ends: its slot goes to C, who has waited longest (on web1): C is sent to web2
    # (close 4422 naming it) and admitted there on the reconnect, D and E move up.
    await b.end()
    _, sent = await c.next("error", 30)
    assert sent["code"] == "line_free_elsewhere" and sent["node"] == "fair2" and sent["fatal"] is True
    assert await c.closed() == 4422
    mark = len(c.messages)
    await c.connect(web2, query="?node=fair2")
    await c.next("admitted", 30, after=mark)
    _, ready = await c.next("ready", 120, after=mark)
    assert ready["node"] == "fair2"
    await d.next("queued", 30, position=1)
    moved_up, _ = await e.next("queued", 30, position=2)

    # web2 dies. D's browser reconnects and the balancer now sends it to web1: D came before E,
    # so D is ahead of E there, and web1's next free slot is D's.
    web2.process.kill()
    web2.process.wait(15)
    mark = len(d.messages)
    await d.connect(web1)
    _, requeued = await d.next("queued", 30, after=mark)
    assert requeued["position"] == 1
    await asyncio.sleep(2.5)  # one heartbeat of E's: a change of place would be told by then
    assert e.last("queued")["position"] == 2

    await a.end()
    d_admitted, _ = await d.next("admitted", 30)
    await d.next("ready", 120, after=d_admitted)
    await d.end()
    e_admitted, _ = await e.next("admitted", 60)
    assert d.at(d_admitted) < e.at(e_admitted)
    await e.next("ready", 120)
    await e.end()
