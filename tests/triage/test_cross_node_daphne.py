"""Listen in and talk across two real server processes (issue 13): two daphne processes on the
real PostgreSQL (the test database) and Redis, real models (the rules' words only: no LLM). The
patient's socket is on one process, which holds the call; the clinician's listen and talk
sockets are on the other, which relays them over the channel layer (triage/call_link.py).
"""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from tests.browser.harness import Daphne, database_url
from tests.triage.clinician_support import make_clinician
from triage import audit, handoff, listen, services
from triage.dashboard.control import TAKE_OVER_TEXT
from triage.models import AuditEvent

pytestmark = [
    pytest.mark.models,
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]


@pytest.fixture
def nodes(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the two-process test needs PostgreSQL (DATABASE_URL=postgres://...)")
    common = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_ENV": "development",
        "TRIAGE_PRELOAD_MODELS": "1",
        "VOICE_LLM_BACKEND": "none",  # the rules' words only: a shorter model load
    }
    servers = [
        Daphne({**common, "TRIAGE_NODE_ID": name}, f"{name}-daphne.log") for name in ("call1", "relay2")
    ]
    try:
        for server in servers:
            server.wait_ready(timeout=600, path="/readyz")
        yield servers
    finally:
        for server in servers:
            server.stop()


class Socket:
    """A WebSocket on one server; JSON messages and binary frames kept as they arrive."""

    def __init__(self, ws):
        self.ws = ws
        self.json: list[dict] = []
        self.binary: list[bytes] = []
        self.closed: int | None = None
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, server: Daphne, path: str, cookie: str | None = None) -> Socket:
        import websockets

        headers = [("Cookie", f"sessionid={cookie}")] if cookie else []
        url = server.base_url.replace("http", "ws", 1) + path
        return cls(await websockets.connect(url, origin="http://127.0.0.1", additional_headers=headers))

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                (self.json.append(json.loads(data)) if isinstance(data, str) else self.binary.append(data))
        except Exception:
            pass
        self.closed = self.ws.close_code

    async def until(self, predicate, what: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while True:
            found = next((m for m in list(self.json) + list(self.binary) if predicate(m)), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.json[-6:]}"
            await asyncio.sleep(0.05)


def login(username: str) -> str:
    client = Client()
    client.force_login(make_clinician(username))
    return client.cookies["sessionid"].value


async def post(cookie_user: str, url: str, **data):
    @database_sync_to_async
    def send():
        from django.contrib.auth import get_user_model

        client = Client()
        client.force_login(get_user_model().objects.get(username=cookie_user))
        return client.post(url, data, HTTP_ACCEPT="application/json")

    return await send()


async def test_the_clinician_on_another_process_listens_talks_and_hands_back(nodes):
    call_node, relay_node = nodes
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    patient = await Socket.open(call_node, f"/ws/patient/{token}/")
    ready = await patient.until(lambda m: isinstance(m, dict) and m["type"] == "ready", "ready", 300)
    assert ready["node"] == "call1"
    nurse = await database_sync_to_async(login)("nurse_two_nodes")

    # Listen in from the other process: the patient's microphone reaches it, unchanged.
    listener = await Socket.open(relay_node, f"/ws/clinician/calls/{sid}/listen/", nurse)
    await listener.until(lambda m: isinstance(m, dict) and m["type"] == "listen_ready", "listen_ready", 30)
    mic = struct.pack("<320h", *range(-320, 320, 2))
    await patient.ws.send(mic)
    heard = listen.HEADER.pack(listen.PATIENT, listen.PATIENT_RATE) + mic
    await listener.until(lambda m: m == heard, "the patient's audio on the other process", 30)
    await listener.ws.close()

    # Take over (the action reaches the call's process over its group), then talk from the other.
    assert (await post("nurse_two_nodes", f"/dashboard/sessions/{sid}/take-over")).status_code == 200
    await patient.until(
        lambda m: isinstance(m, dict) and m.get("type") == "agent_text" and m["text"] == TAKE_OVER_TEXT,
        "the take-over notice",
    )
    talk = await Socket.open(relay_node, f"/ws/clinician/calls/{sid}/talk/", nurse)
    ready = await talk.until(
        lambda m: isinstance(m, dict) and m["type"] in ("talk_ready", "error"), "talk", 60
    )
    assert ready["type"] == "talk_ready", ready
    start = await patient.until(
        lambda m: isinstance(m, dict) and m.get("type") == "agent_reply_start" and m["kind"] == "clinician",
        "the clinician's reply on the patient's page",
    )
    prefix = struct.pack("<I", start["reply_id"])
    for _ in range(10):
        await talk.ws.send(struct.pack("<320h", *([3000, -3000] * 160)))
    voice = await patient.until(
        lambda m: isinstance(m, bytes) and m.startswith(prefix), "the clinician's voice at the patient"
    )
    assert len(voice) > 4
    await patient.ws.send(mic)
    await talk.until(lambda m: m == heard, "the patient's voice at the talking clinician", 30)

    assert (await post("nurse_two_nodes", f"/dashboard/sessions/{sid}/hand-back")).status_code == 200
    await patient.until(
        lambda m: (
            isinstance(m, dict) and m.get("type") == "agent_text" and m["text"] == handoff.HAND_BACK_TEXT
        ),
        "the hand-back notice",
    )
    await talk.ws.close()
    await patient.ws.send(json.dumps({"type": "end"}))
    await patient.until(lambda m: isinstance(m, dict) and m.get("type") == "ended", "ended")

    @database_sync_to_async
    def stored():
        kinds = list(AuditEvent.objects.filter(session_id=sid).order_by("seq").values_list("kind", flat=True))
        return kinds, audit.verify_chain(sid)

    deadline = time.monotonic() + 30
    while "clinician_voice_ended" not in (kinds := (await stored())[0]):  # written as the socket closes
        assert time.monotonic() < deadline, kinds
        await asyncio.sleep(0.2)
    kinds, broken = await stored()
    for kind in (
        "clinician_listen_started",
        "clinician_listen_ended",
        "clinician_took_over",
        "clinician_voice_started",
        "clinician_handed_back",
        "clinician_voice_ended",
    ):
        assert kind in kinds, kinds
    assert "clinician_connection_lost" not in kinds and broken is None
