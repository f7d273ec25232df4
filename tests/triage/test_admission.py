"""Admission control (triage/admission/): the per-process call cap and the waiting line shared by
the nodes.

The line itself on the real Redis, two lines standing for two web nodes: arrival order across
nodes, a freed slot going to the longest-waiting caller its node can serve, a caller who leaves
freeing their place (and getting it back on a reconnect), a dead node's entries expiring. Then
the patient socket with a cap of 1 (real consumer, real voice pipeline and models, real
PostgreSQL and Redis, channels' WebsocketCommunicator): the second caller is told and hears that
all lines are busy, with their place and the emergency advice, is connected when the first call
ends; a waiting caller who hangs up frees their place; a clinician dashboard lists the line.
"""

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
from tests.triage.clinician_support import make_clinician, receive_until, ws_headers
from tests.triage.test_patient_consumer import Inbox, connect
from triage import admission, services
from triage.admission import announce
from triage.admission.queue import Place, RedisQueue
from triage.audit import verify_chain
from triage.dashboard import timeline
from triage.models import AuditEvent, TriageSession
from triage.node import NODE_ID

pytestmark = pytest.mark.services


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL") or settings.REDIS_URL
    if not url:
        pytest.fail("the admission tests need Redis (REDIS_URL=redis://...)")
    return url


@pytest.fixture
async def two_nodes(redis_url):
    """Two handles on one fresh line, as web1 and web2 see it (short entry lifetime)."""
    prefix = f"test:admission:{uuid.uuid4().hex}:"
    web1 = RedisQueue(redis_url, entry_ttl_s=0.5, prefix=prefix)
    web2 = RedisQueue(redis_url, entry_ttl_s=0.5, prefix=prefix)
    yield web1, web2
    keys = [k async for k in web1.redis.scan_iter(match=prefix + "*")]
    if keys:
        await web1.redis.delete(*keys)
    await web1.close()
    await web2.close()


# --- the line on Redis ----------------------------------------------------------------------


async def test_a_freed_slot_goes_to_the_longest_waiting_caller_whichever_node_frees_it(two_nodes):
    web1, web2 = two_nodes
    a, b, c, d, e = "a", "b", "c", "d", "e"
    # Arrivals alternate between the nodes: tickets follow arrival order across both.
    tickets = [await web1.join(a, "web1"), await web2.join(b, "web2"), await web1.join(c, "web1")]
    tickets.append(await web2.join(d, "web2"))
    assert tickets == sorted(tickets) and len(set(tickets)) == 4

    # One line: a place counts everyone ahead, on every node.
    assert await web1.place(a, "web1") == Place(1, 4)
    assert await web1.place(c, "web1") == Place(3, 4)
    assert await web2.place(d, "web2") == Place(4, 4)

    # A slot frees on web2: it is offered to a, who waits on web1 (held for a, not for b).
    assert await web2.offer("web2") == a
    assert await web1.grant(a) == "web2"
    # Then one on web1: a holds an offer already, so b (on web2) is next.
    assert await web1.offer("web1") == b
    # A newcomer on web1 with a free slot does not overtake c, who has no offer yet.
    await web1.join(e, "web1")
    assert await web1.take_turn(e, "web1") == 0
    assert await web1.take_turn(c, "web1") == 1
    assert await web1.take_turn(c, "web1") == -1  # gone from the line: never admitted twice

    # a reconnects to web2 (the node that holds the slot): only web2 can spend the grant.
    assert await web1.use_grant(a, "web1") is None
    since = await web2.use_grant(a, "web2")
    assert since is not None and 0 <= time.time() - since < 60
    assert await web2.grant(a) is None
    await web2.leave(a)

    # d's balancer could not route it by node: pinned, only web2 offers to it; web1 skips to e.
    await web2.pin(d)
    assert await web1.offer("web1") == e
    assert await web2.offer("web2") == d
    assert await web1.offer("web1") is None  # everyone left holds an offer
    assert [w.session_id for w in await web2.waiters()] == [b, d, e]
    assert [w.position for w in await web2.waiters()] == [1, 2, 3]


async def test_a_caller_who_leaves_frees_their_place_and_gets_it_back_on_reconnect(two_nodes):
    web1, _ = two_nodes
    for sid in ("a", "b", "c"):
        await web1.join(sid, "web1")
    await web1.leave("a")
    assert await web1.place("b", "web1") == Place(1, 2)  # everyone behind moves up
    assert await web1.place("a", "web1") == Place(0, 2)
    await web1.join("a", "web1")  # the same caller reconnects within the ticket's life
    assert await web1.place("a", "web1") == Place(1, 3)  # first again: the place was theirs
    assert await web1.place("b", "web1") == Place(2, 3)

    # Once admitted, the ticket is spent: a later join is a new arrival at the back.
    assert await web1.take_turn("a", "web1") == 1
    await web1.forget("a")
    await web1.join("a", "web1")
    assert await web1.place("a", "web1") == Place(3, 3)


async def test_a_dead_nodes_waiters_expire_and_keep_their_place_on_the_node_they_move_to(two_nodes):
    web1, web2 = two_nodes
    await web1.join("early", "web1")  # waits on web1, which then dies (stops renewing)
    await web2.join("later", "web2")
    deadline = time.monotonic() + 10
    while await web2.place("later", "web2") != Place(1, 1):  # the dead entry is dropped
        assert time.monotonic() < deadline, "the dead node's entry did not expire"
        await web2.join("later", "web2")  # web2 is alive: it renews its own
        await asyncio.sleep(0.1)  # bounded above; entry lifetime 0.5 s
    assert [w.session_id for w in await web2.waiters()] == ["later"]
    # The caller reconnects; the balancer sends them to web2 now: ahead of the later arrival.
    await web2.join("early", "web2")
    assert await web2.place("early", "web2") == Place(1, 2)
    assert await web2.take_turn("later", "web2") == 0
    assert await web2.take_turn("early", "web2") == 1


# --- the patient socket with a cap of 1 -------------------------------------------------------


@pytest.fixture(scope="module")
def voice_models():
    from triage.runtime import load_runtime_blocking

    return load_runtime_blocking()


@pytest.fixture
def cap_of_one(monkeypatch, redis_url):
    monkeypatch.setitem(settings.TRIAGE, "MAX_CALLS", 1)
    monkeypatch.setattr(settings, "REDIS_URL", redis_url)


@pytest.fixture(autouse=True)
async def end_leftover_calls():
    yield
    import triage.live

    for leftover in list(triage.live._calls.values()):
        await asyncio.wait_for(leftover.end("test_teardown"), timeout=30)
    for task in list(admission.line._dispatchers.values()):
        task.cancel()
    admission.line._dispatchers.clear()
    for slot, _ in admission.line._offered.values():
        slot.release()
    admission.line._offered.clear()
    line = admission.queue()
    if isinstance(line, RedisQueue):
        await line.close()
        admission.line._queues.clear()


async def new_session() -> tuple[str, str]:
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    return str(session.pk), token


async def end(communicator, inbox: Inbox) -> None:
    await communicator.send_to(text_data=json.dumps({"type": "end"}))
    await inbox.until(lambda e: e["type"] == "ended", timeout=60)
    await communicator.disconnect()


@database_sync_to_async
def audit_kinds(sid: str) -> list[str]:
    return list(AuditEvent.objects.filter(session_id=sid).order_by("seq").values_list("kind", flat=True))


@pytest.mark.models
@pytest.mark.django_db(transaction=True)
async def test_over_the_cap_a_caller_waits_told_their_place_and_is_connected_when_a_line_frees(
    voice_models, cap_of_one
):
    _, first_token = await new_session()
    second_sid, second_token = await new_session()
    first, first_inbox = await connect(first_token)
    await first_inbox.until(lambda e: e["type"] == "ready", timeout=180)

    second, inbox = await connect(second_token)
    queued = await inbox.until(lambda e: e["type"] == "queued", timeout=30)
    assert queued["position"] == 1 and queued["waiting"] >= 1
    assert queued["text"] == announce.busy_text(1)
    assert queued["emergency"] == "If this is a life-threatening emergency, hang up and call 911 now."
    assert queued["output"]["sample_rate"] == voice_models.config.output_sample_rate
    # ... and hears it: one reply of kind "queue" with the same words, and its audio.
    start = await inbox.until(lambda e: e["type"] == "agent_reply_start", timeout=60)
    assert start["kind"] == "queue"
    said = await inbox.until(lambda e: e["type"] == "agent_text", timeout=30)
    assert said["text"] == f"{queued['text']} {queued['emergency']}"
    await inbox.until(lambda e: e["type"] == "agent_reply_end", timeout=60)
    assert inbox.audio.get(start["reply_id"], 0) > 16000  # over half a second of speech
    assert not [e for e in inbox.events if e["type"] == "ready"]  # no pipeline for it yet
    assert admission.in_use() == 1

    await end(first, first_inbox)  # the first call ends: its line goes to the second caller
    admitted = await inbox.until(lambda e: e["type"] == "admitted", timeout=30)
    assert admitted["waited_ms"] > 0
    ready = await inbox.until(lambda e: e["type"] == "ready", timeout=60)
    assert ready["resumed"] is False and ready["node"] == NODE_ID
    await inbox.until(lambda e: e["type"] == "agent_reply_start" and e["kind"] == "greeting", timeout=60)
    await end(second, inbox)

    kinds = await audit_kinds(second_sid)
    assert kinds.index("queued") < kinds.index("admitted") < kinds.index("socket_connected")
    assert await database_sync_to_async(verify_chain)(second_sid) is None
    # The review page's timeline says it in words.
    titles = await database_sync_to_async(
        lambda: [i.title for i in timeline.build(TriageSession.objects.get(pk=second_sid))["items"]]
    )()
    assert "All lines busy: waiting for a line" in titles and "Connected after waiting" in titles


@pytest.mark.models
@pytest.mark.django_db(transaction=True)
async def test_a_waiting_caller_who_hangs_up_frees_their_place_and_the_dashboard_shows_the_line(
    voice_models, cap_of_one
):
    _, first_token = await new_session()
    leaver_sid, leaver_token = await new_session()
    third_sid, third_token = await new_session()
    clinician = await database_sync_to_async(make_clinician)("queue-nurse")
    headers = await database_sync_to_async(ws_headers)(clinician)
    dashboard = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
    assert (await dashboard.connect(timeout=30))[0]
    await receive_until(dashboard, lambda m: m["type"] == "queue" and m["waiting"] == [], 30)

    first, first_inbox = await connect(first_token)
    await first_inbox.until(lambda e: e["type"] == "ready", timeout=180)
    leaver, leaver_inbox = await connect(leaver_token)
    assert (await leaver_inbox.until(lambda e: e["type"] == "queued", timeout=30))["position"] == 1
    third, inbox = await connect(third_token)
    assert (await inbox.until(lambda e: e["type"] == "queued", timeout=30))["position"] == 2

    # The clinician sees both, in order, live.
    listed = await receive_until(dashboard, lambda m: m["type"] == "queue" and len(m["waiting"]) == 2, 30)
    assert [w["session_id"] for w in listed["waiting"]] == [leaver_sid, third_sid]
    assert [w["position"] for w in listed["waiting"]] == [1, 2]
    assert {w["node"] for w in listed["waiting"]} == {NODE_ID}

    # The first in line hangs up: the other moves up (told, and told aloud).
    await leaver.send_to(text_data=json.dumps({"type": "end"}))
    await leaver_inbox.until(lambda e: e["type"] == "ended", timeout=30)
    await leaver.disconnect()
    moved = await inbox.until(lambda e: e["type"] == "queued" and e["position"] == 1, timeout=30)
    assert moved["waiting"] == 1
    await inbox.until(
        lambda e: e["type"] == "agent_text" and e["text"] == announce.moved_up_text(1), timeout=60
    )
    listed = await receive_until(dashboard, lambda m: m["type"] == "queue" and len(m["waiting"]) == 1, 30)
    assert listed["waiting"][0]["session_id"] == third_sid

    await end(first, first_inbox)
    await inbox.until(lambda e: e["type"] == "ready", timeout=60)
    await receive_until(dashboard, lambda m: m["type"] == "queue" and m["waiting"] == [], 30)
    await end(third, inbox)
    await dashboard.disconnect()

    assert "queue_left" in await audit_kinds(leaver_sid)
    assert "socket_connected" not in await audit_kinds(leaver_sid)  # never started a pipeline
    assert "admitted" in await audit_kinds(third_sid)


@pytest.mark.models
@pytest.mark.django_db(transaction=True)
async def test_a_caller_waiting_on_a_draining_server_is_sent_on_with_their_place_kept(
    voice_models, cap_of_one
):
    from triage import drain

    _, first_token = await new_session()
    waiting_sid, waiting_token = await new_session()
    first, first_inbox = await connect(first_token)
    await first_inbox.until(lambda e: e["type"] == "ready", timeout=180)
    second, inbox = await connect(waiting_token)
    await inbox.until(lambda e: e["type"] == "queued", timeout=30)
    drain._draining.set()  # SIGTERM's first step: this process takes no new calls
    try:
        error = await inbox.until(lambda e: e["type"] == "error", timeout=30)
        assert error["code"] == "server_draining" and error["fatal"] is True
        closed = await inbox.until(lambda e: e["type"] == "_closed", timeout=30)
        assert closed["code"] == 4503  # retried by the client: the balancer picks a ready node
    finally:
        drain.reset()
    await second.disconnect()
    line = admission.queue()
    # Out of the line, but the ticket is kept: the reconnect elsewhere is not sent to the back.
    assert (await line.place(waiting_sid, NODE_ID)).position == 0
    assert await line.redis.exists(line.ticket_prefix + waiting_sid)
    await line.forget(waiting_sid)
    await end(first, first_inbox)
    kinds = await audit_kinds(waiting_sid)
    assert "queue_left" in kinds and "admitted" not in kinds
    left = await database_sync_to_async(
        lambda: AuditEvent.objects.get(session_id=waiting_sid, kind="queue_left").payload
    )()
    assert left["reason"] == "draining"
