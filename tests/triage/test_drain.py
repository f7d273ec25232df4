"""/readyz and graceful drain (triage/readiness.py, triage/drain.py).

In-process: readiness reasons against the real PostgreSQL and Redis (and a Redis port nobody
listens on), the drain refusal of a new patient socket, the drain limit. Then a real daphne
process (real models, LLM backend "none" to keep the load short): SIGTERM -> /readyz 503 -> a
new socket is refused with 4503 -> the active call goes on (and may reconnect) -> the call ends
-> the process exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from tests.browser.harness import Daphne, database_url, free_port
from triage import drain, services
from triage import protocol as proto
from triage.models import AuditEvent

ORIGIN = [(b"origin", b"http://127.0.0.1")]


@pytest.fixture
def not_draining():
    drain.reset()
    yield
    drain.reset()


# --- in process ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_200_with_every_check_named_when_ready(not_draining, settings):
    settings.REDIS_URL = os.environ.get("REDIS_URL", "")
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True and body["status"] == "ready" and body["reason"] is None
    assert body["checks"]["database"] == "ok" and body["checks"]["accepting_calls"] == "ok"
    assert body["checks"]["redis"] == ("ok" if settings.REDIS_URL else "skipped")
    assert body["node"] and response["X-Triage-Node"] == body["node"]
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable_and_healthz_stays_200(not_draining, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["reason"].startswith("redis: ")
    assert body["checks"]["database"] == "ok"
    assert Client().get("/healthz").status_code == 200  # alive, just not ready


@pytest.mark.django_db
def test_readyz_is_503_while_models_load_or_after_they_failed(not_draining, monkeypatch):
    import triage.readiness

    for state, reason in (
        ("loading", "models: loading"),
        ("failed:ModelUnavailable", "models: failed:ModelUnavailable"),
    ):
        monkeypatch.setattr(triage.readiness, "models_state", lambda s=state: s)
        response = Client().get("/readyz")
        assert response.status_code == 503 and response.json()["reason"] == reason
        assert response.json()["models"] == state


async def test_draining_refuses_a_new_patient_socket_with_a_retryable_code(not_draining, transactional_db):
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    drain._draining.set()  # what SIGTERM does first (begin() also starts the wait)
    response = await database_sync_to_async(Client().get)("/readyz")
    assert response.status_code == 503 and response.json()["reason"] == "draining"
    communicator = WebsocketCommunicator(application, f"/ws/patient/{token}/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=30)
    assert connected  # accepted first, so the client can read why it is refused
    error = json.loads((await communicator.receive_output(timeout=10))["text"])
    assert error["code"] == proto.ErrorCode.DRAINING and error["fatal"] is True
    closed = await communicator.receive_output(timeout=10)
    assert closed["type"] == "websocket.close" and closed["code"] == proto.CLOSE_DRAINING == 4503
    await communicator.disconnect()
    # Refused before any pipeline started: the session is untouched and still open.
    assert not await database_sync_to_async(
        AuditEvent.objects.filter(session=session, kind="socket_connected").exists
    )()


async def test_drain_stops_when_calls_end_or_at_the_limit(not_draining):
    stopped: list[str] = []
    active = [2]
    task = drain.begin(30.0, lambda: stopped.append("ended"), lambda: active[0])
    assert drain.draining()
    active[0] = 0  # the last calls end
    await asyncio.wait_for(task, 5)
    assert stopped == ["ended"]

    drain.reset()
    task = drain.begin(0.2, lambda: stopped.append("limit"), lambda: 1)  # a call that never ends
    await asyncio.wait_for(task, 5)
    assert stopped == ["ended", "limit"]


# --- a real daphne process -----------------------------------------------------------------


def http(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def new_token() -> str:
    """A consented session in the test database the daphne process uses."""
    _, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    return token


async def receive_json(ws, timeout: float = 60) -> dict:
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(message, str):
            return json.loads(message)  # binary frames (agent audio) are skipped


async def until(ws, kind: str, timeout: float = 120) -> dict:
    async def loop():
        while (event := await receive_json(ws, timeout))["type"] != kind:
            pass
        return event

    return await asyncio.wait_for(loop(), timeout)


@pytest.fixture
def node(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the drain test needs PostgreSQL (DATABASE_URL=postgres://...)")
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_ENV": "development",
        "TRIAGE_PRELOAD_MODELS": "1",
        "VOICE_LLM_BACKEND": "none",  # the rules' words only: a shorter model load
        "TRIAGE_DRAIN_SECONDS": "120",
        "TRIAGE_NODE_ID": "drain-node",
    }
    server = Daphne(env, "drain-daphne.log")
    try:
        server.wait_ready(timeout=600, path="/readyz")  # ready = models loaded, Redis and DB up
        yield server
    finally:
        server.stop()


@pytest.mark.models
@pytest.mark.django_db(transaction=True)
async def test_sigterm_drains_then_exits(node):
    import websockets

    ws_url = node.base_url.replace("http", "ws", 1)
    status, ready = await asyncio.to_thread(http, node.base_url + "/readyz")
    assert status == 200 and ready["node"] == "drain-node" and ready["models"] == "loaded"

    token = await new_token()
    active = await websockets.connect(f"{ws_url}/ws/patient/{token}/", origin="http://127.0.0.1")
    assert (await until(active, "ready"))["resumed"] is False

    node.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while (await asyncio.to_thread(http, node.base_url + "/readyz"))[0] != 503:
        assert time.monotonic() < deadline, "readiness never failed after SIGTERM"
        await asyncio.sleep(0.1)  # waiting for the server's state to change, bounded above
    status, body = await asyncio.to_thread(http, node.base_url + "/readyz")
    assert status == 503 and body["reason"] == "draining"

    # A new call is refused with the retryable close code...
    other = await new_token()
    refused = await websockets.connect(f"{ws_url}/ws/patient/{other}/", origin="http://127.0.0.1")
    assert (await receive_json(refused))["code"] == proto.ErrorCode.DRAINING
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await receive_json(refused)
    assert closed.value.rcvd.code == proto.CLOSE_DRAINING

    # ...the active call goes on: it answers, drops its socket and resumes on this process.
    await active.send(json.dumps({"type": "ping", "t": "during-drain"}))
    assert (await until(active, "pong"))["t"] == "during-drain"
    await active.close()
    active = await websockets.connect(f"{ws_url}/ws/patient/{token}/", origin="http://127.0.0.1")
    assert (await until(active, "ready"))["resumed"] is True
    assert node.process.poll() is None  # still serving its call

    # The call ends: the process has nothing left and exits cleanly.
    await active.send(json.dumps({"type": "end"}))
    assert (await until(active, "ended"))["reason"] == "patient_ended"
    await active.close()
    assert await asyncio.to_thread(node.process.wait, 60) == 0
    assert "drained: no active calls" in node.log_tail(20000)
