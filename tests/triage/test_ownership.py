"""Call ownership leases (triage/ownership.py) on the real Redis, and the patient socket that
reaches a node without the call: refused while another node holds it (never a second
pipeline). The resume after the owner died: tests/triage/test_resume.py."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from triage import ownership, services
from triage import protocol as proto
from triage.live import LiveCall

pytestmark = pytest.mark.services

ORIGIN = [(b"origin", b"http://127.0.0.1")]


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL") or settings.REDIS_URL
    if not url:
        pytest.fail("the ownership tests need Redis (REDIS_URL=redis://...)")
    return url


@pytest.fixture
def session_id():
    return str(uuid.uuid4())


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)  # waiting for Redis to expire a key, bounded above


async def test_one_owner_at_a_time_and_a_dead_owners_call_is_a_move(redis_url, session_id):
    web1 = ownership.Leases(redis_url, node="web1/1/a", lease_s=0.5, renew_s=60)
    web2 = ownership.Leases(redis_url, node="web2/2/b", lease_s=0.5, renew_s=60)
    try:
        first = await web1.claim(session_id)
        assert first == ownership.Claim(True, "web1/1/a", None)
        await web1.mark_started(session_id)
        refused = await web2.claim(session_id)
        assert (refused.granted, refused.owner) == (False, "web1/1/a")  # never a second pipeline
        assert 0 < refused.retry_ms <= 500  # the lease lapses then unless web1 renews it
        assert (await web1.claim(session_id)).granted  # the owner itself may claim again

        # web1 dies: it stops renewing and the lease expires.
        web1.held.clear()
        await wait_until(lambda: _gone(web2, session_id))
        moved = await web2.claim(session_id)
        assert moved.granted and moved.owner == "web2/2/b" and moved.moved_from == "web1/1/a"
    finally:
        await web2.redis.delete(ownership.owner_key(session_id), ownership.last_owner_key(session_id))
        for leases in (web1, web2):
            if leases._renewer is not None:
                leases._renewer.cancel()
            await leases.redis.aclose()


async def _gone(leases: ownership.Leases, session_id: str) -> bool:
    return not await leases.redis.exists(ownership.owner_key(session_id))


async def test_renewal_keeps_live_calls_releases_ended_ones_and_reports_a_lost_lease(redis_url):
    web1 = ownership.Leases(redis_url, node="web1/1/a", lease_s=30, renew_s=60)
    live, ended, stolen = (str(uuid.uuid4()) for _ in range(3))
    try:
        for sid in (live, ended, stolen):
            assert (await web1.claim(sid)).granted
        await web1.redis.pexpire(ownership.owner_key(live), 1000)  # about to lapse
        await web1.redis.set(ownership.owner_key(stolen), "web2/2/b")  # taken after a long stall
        lost = await web1.renew_once(lambda sid: sid != ended)
        assert lost == [stolen] and web1.held == {live}
        assert await web1.redis.pttl(ownership.owner_key(live)) > 1000  # renewed to the full lease
        assert not await web1.redis.exists(ownership.owner_key(ended))  # released
        assert await web1.redis.get(ownership.owner_key(stolen)) == "web2/2/b"  # not ours to drop
    finally:
        await web1.redis.delete(*(ownership.owner_key(s) for s in (live, ended, stolen)))
        if web1._renewer is not None:
            web1._renewer.cancel()
        await web1.redis.aclose()


async def close_registry(registry: ownership.Leases, sid: str) -> None:
    await registry.redis.delete(ownership.owner_key(sid), ownership.last_owner_key(sid))
    if registry._renewer is not None:
        registry._renewer.cancel()
    await registry.redis.aclose()


async def connect_and_read_refusal(token: str) -> tuple[dict, int]:
    communicator = WebsocketCommunicator(application, f"/ws/patient/{token}/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=30)
    assert connected
    error = json.loads((await communicator.receive_output(timeout=10))["text"])
    closed = await communicator.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    await communicator.disconnect()
    return error, closed["code"]


@pytest.mark.django_db(transaction=True)
async def test_a_socket_for_a_call_another_node_holds_is_refused_and_starts_nothing(redis_url):
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    registry = ownership.leases()
    await registry.redis.set(ownership.owner_key(sid), "web2/2/b", px=30_000)
    try:
        error, code = await connect_and_read_refusal(token)
        assert error["code"] == proto.ErrorCode.CALL_ELSEWHERE and error["fatal"] is True
        assert error["node"] == "web2"  # the owner's node name: the client reconnects with ?node=web2
        assert 20_000 < error["retry_ms"] <= 30_000  # when the lease lapses unless its owner renews it
        assert code == proto.CLOSE_CALL_ELSEWHERE == 4421
        assert LiveCall.get(sid) is None  # no pipeline here
        assert await registry.redis.get(ownership.owner_key(sid)) == "web2/2/b"  # untouched
    finally:
        await close_registry(registry, sid)
