"""Hostile input over the real daphne socket, mixed with a call streaming real speech (issue 17).

daphne runs as deployed (a subprocess on loopback, the real models, PostgreSQL, Redis; the
client is a plain WebSocket client over TCP). One call streams real speech in real time while
it and three attacker calls get ``TRIAGE_HOSTILE_MESSAGES`` messages in all (1,500 here; 10,000
in ``make drills``): malformed JSON, deep nesting, wrong types, oversize text and audio frames,
binary garbage, unknown types, floods over the rate limit, and at the end of each attacker's
share a frame over daphne's 1 MiB limit, which closes that socket. What must hold:

* 0 locked calls: every call, the dropped ones included, resumes on a new socket;
* 0 server tracebacks: daphne's own log (stdout and stderr) has no traceback and no ERROR;
* the words spoken during the flood were heard, and the call answers afterwards: agent audio
  for a reply that started after the flood;
* ``verify_audit`` passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from tests.browser.harness import serve_test_database
from tests.speech import frames, silence, speech_pcm16k
from tests.triage.test_hostile_input import hostile
from triage import protocol as proto

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.models,
    pytest.mark.timeout(900),
]

HOSTILE_MESSAGES = int(os.environ.get("TRIAGE_HOSTILE_MESSAGES", "1500"))
ATTACKERS = 3
FIRST = "I have had a headache since this morning."
SECOND = "It is getting worse and I feel sick."
DAPHNE_MAX_MESSAGE = 1024 * 1024  # daphne's default websocket_max_message_size
# Daphne's log lines that mean the server failed: a traceback, or anything logged at ERROR.
FAILURE = re.compile(r"Traceback \(most recent call last\)|\bERROR\b|\bCRITICAL\b")


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    speech_pcm16k(FIRST), speech_pcm16k(SECOND)
    saved = os.environ.get("TRIAGE_MAX_CALLS")
    os.environ["TRIAGE_MAX_CALLS"] = "8"  # four calls at once here: none waits in the line
    try:
        with serve_test_database("daphne-hostile.log", preload_models=True, timeout=600) as daphne:
            yield daphne
    finally:
        if saved is None:
            os.environ.pop("TRIAGE_MAX_CALLS", None)
        else:
            os.environ["TRIAGE_MAX_CALLS"] = saved


def flood(rng: random.Random) -> list[str | bytes]:
    """What a client over the rate limit sends: a burst of valid-looking messages at once."""
    return [json.dumps({"type": "ping", "t": i}) for i in range(rng.randint(50, 300))]


def wrong_types(rng: random.Random) -> str:
    return json.dumps(
        rng.choice(
            [
                {"type": 5},
                {"type": ["ping"]},
                {"type": None},
                {"type": {"type": "ping"}},
                {"type": "playback", "reply_id": True, "played_ms": False},
                {"type": "playback", "reply_id": "1", "played_ms": 1},
                {"type": "playback", "reply_id": 1.5, "played_ms": [1]},
                {"type": "playback", "reply_id": -7, "played_ms": 1e308},
                {"type": "hello", "protocol": {"v": 1}},
                {"type": "ping", "t": {"nested": [1, 2, {"x": None}]}},
            ]
        )
    )


def hostile_any(rng: random.Random) -> str | bytes:
    pick = rng.random()
    if pick < 0.15:
        return wrong_types(rng)
    return hostile(rng)


@dataclass
class Socket:
    """One patient socket, as a browser is one: what came back and when."""

    ws: Any
    messages: list[tuple[float, dict]] = field(default_factory=list)
    audio: list[tuple[float, int, int]] = field(default_factory=list)  # (arrival, reply_id, bytes)
    close_code: int | None = None
    reader: asyncio.Task | None = None

    def start(self) -> Socket:
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        import websockets

        try:
            async for m in self.ws:
                now = time.monotonic()
                if isinstance(m, bytes):
                    self.audio.append((now, struct.unpack_from("<I", m)[0], len(m) - 4))
                else:
                    self.messages.append((now, json.loads(m)))
        except websockets.ConnectionClosed:
            pass
        self.close_code = self.ws.close_code

    async def until(self, pred, timeout: float = 60.0, since: int = 0) -> dict:
        """The first message from index ``since`` on that ``pred`` accepts."""
        deadline = time.monotonic() + timeout
        seen = since
        while time.monotonic() < deadline:
            for _, m in self.messages[seen:]:
                if pred(m):
                    return m
            seen = len(self.messages)
            if self.reader is not None and self.reader.done():
                raise AssertionError(f"socket closed ({self.close_code}) while waiting")
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; last messages: {[m for _, m in self.messages[-5:]]}")

    def errors(self) -> list[dict]:
        return [m for _, m in self.messages if m.get("type") == "error"]

    async def send(self, payload: str | bytes) -> bool:
        import websockets

        try:
            await self.ws.send(payload)
            return True
        except websockets.ConnectionClosed:
            return False

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader], timeout=10)


@dataclass
class Call:
    base: str
    session_id: str
    path: str
    sockets: list[Socket] = field(default_factory=list)

    @property
    def socket(self) -> Socket:
        return self.sockets[-1]

    @classmethod
    async def create(cls, base: str) -> Call:
        from evals.triage.bench_socket.client import HttpSession

        status, body = await asyncio.to_thread(
            HttpSession(base).post_json,
            "/api/sessions",
            {"consent": True, "subject": "self", "age_band": "18_to_64"},
        )
        assert status == 201, (status, body)
        return cls(base, body["session_id"], body["websocket"])

    async def connect(self) -> dict:
        import websockets

        from evals.triage.bench_socket.client import ws_url

        ws = await websockets.connect(
            ws_url(self.base, self.path), origin=self.base, max_size=2**22, open_timeout=60
        )
        self.sockets.append(Socket(ws).start())
        return await self.socket.until(lambda m: m["type"] in ("ready", "error"), timeout=300)


async def attack(call: Call, rng: random.Random, budget: list[int], sent: dict[str, int]) -> None:
    """Hostile messages and floods until the shared budget is spent, then one frame over
    daphne's limit (the server closes the socket: the call must resume later)."""
    while budget[0] > 0:
        batch = flood(rng) if rng.random() < 0.1 else [hostile_any(rng) for _ in range(rng.randint(5, 40))]
        batch = batch[: budget[0]]
        budget[0] -= len(batch)
        for payload in batch:
            if not await call.socket.send(payload):
                sent["refused_by_close"] += 1
                continue
            sent["attack"] += 1
        await asyncio.sleep(0.1)  # ~225 a second each: the flood lasts while the caller speaks
    if await call.socket.send(os.urandom(DAPHNE_MAX_MESSAGE + 4096)):
        sent["oversize_closing"] += 1
    await asyncio.wait([call.socket.reader], timeout=30)


async def speak_through(call: Call, pcm: bytes, rng: random.Random, budget: list[int], sent: dict) -> None:
    """Real-time speech frames, each followed by two hostile messages (150 messages a second
    with the audio: under the rate limit, so the audio itself is never dropped)."""
    start = time.monotonic()
    for i, frame in enumerate(frames(pcm)):
        assert await call.socket.send(frame), "the speech call's socket stayed open"
        for _ in range(2):
            if budget[0] > 0:
                budget[0] -= 1
                assert await call.socket.send(hostile_any(rng))
                sent["with_speech"] += 1
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))


async def speak(call: Call, pcm: bytes) -> None:
    start = time.monotonic()
    for i, frame in enumerate(frames(pcm)):
        assert await call.socket.send(frame)
        await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))


def played_all(call: Call, reply: dict) -> str:
    return json.dumps({"type": "playback", "reply_id": reply["reply_id"], "played_ms": 60000})


async def test_hostile_messages_over_the_real_socket_mixed_with_speech(server):
    log_start = server.log_path.stat().st_size
    rng = random.Random(1717)
    sent = {"with_speech": 0, "attack": 0, "refused_by_close": 0, "oversize_closing": 0}
    budget = [HOSTILE_MESSAGES]

    speaker = await Call.create(server.base_url)
    ready = await speaker.connect()
    assert ready["type"] == "ready", ready
    greeting = await speaker.socket.until(lambda m: m["type"] == "agent_reply_end", timeout=120)
    await speaker.socket.send(played_all(speaker, greeting))
    attackers = [await Call.create(server.base_url) for _ in range(ATTACKERS)]
    for call in attackers:
        assert (await call.connect())["type"] == "ready"

    # --- the flood, with real speech on the first call ------------------------------------
    t0 = time.monotonic()
    attacks = [
        asyncio.ensure_future(attack(c, random.Random(i), budget, sent)) for i, c in enumerate(attackers)
    ]
    await speak_through(speaker, silence(300) + speech_pcm16k(FIRST) + silence(1500), rng, budget, sent)
    while budget[0] > 0:  # the open microphone's quiet goes on while the attackers finish
        await speak_through(speaker, silence(200), rng, budget, sent)
    await asyncio.gather(*attacks)
    flood_end = time.monotonic()
    total = sent["with_speech"] + sent["attack"] + sent["refused_by_close"]
    assert total >= HOSTILE_MESSAGES

    # --- the speech call: heard, still open, answers after the flood -------------------------
    final = await speaker.socket.until(lambda m: m["type"] == "transcript" and m["final"] and m["text"], 120)
    assert "headache" in final["text"].lower(), final
    assert speaker.socket.close_code is None and not speaker.socket.reader.done(), (
        "the speech call stayed open"
    )
    errors = speaker.socket.errors()
    assert errors and not [e for e in errors if e["fatal"]], "every error on the speech call was non-fatal"
    known = {v for k, v in vars(proto.ErrorCode).items() if k.isupper()}
    codes = {e["code"] for c in [speaker, *attackers] for e in c.socket.errors()}
    assert codes <= known, codes - known
    answer = await speaker.socket.until(
        lambda m: m["type"] == "agent_reply_end" and m["reply_id"] > greeting["reply_id"], 180
    )
    await speaker.socket.send(played_all(speaker, answer))
    await speak(speaker, silence(300) + speech_pcm16k(SECOND))
    said = time.monotonic()
    await speak(speaker, silence(1500))
    after = await speaker.socket.until(
        lambda m: m["type"] == "agent_reply_start" and m["reply_id"] > answer["reply_id"], 180
    )
    await speaker.socket.until(
        lambda m: m["type"] == "agent_reply_end" and m["reply_id"] == after["reply_id"], 180
    )
    heard_after = [(t, n) for t, rid, n in speaker.socket.audio if rid == after["reply_id"] and t > flood_end]
    assert heard_after and sum(n for _, n in heard_after) > 0, "agent audio after the flood"
    answered_s = heard_after[0][0] - said

    # --- 0 locked calls: every call resumes on a new socket ----------------------------------
    closed_by_server = [int(c.socket.close_code or 0) for c in attackers]
    locked = []
    await speaker.socket.close()
    for call in [speaker, *attackers]:
        again = await call.connect()
        if again.get("type") != "ready" or again.get("resumed") is not True:
            locked.append((call.session_id[:8], again))
    assert locked == [], f"locked calls: {locked}"
    for call in [speaker, *attackers]:
        await call.socket.send(json.dumps({"type": "end"}))
        await call.socket.until(lambda m: m["type"] == "ended", 60)
        await call.socket.close()

    # --- 0 tracebacks in daphne's log; the audit chains verify --------------------------------
    await asyncio.sleep(1.0)
    log = server.log_path.read_bytes()[log_start:].decode("utf-8", "replace")
    failures = [line for line in log.splitlines() if FAILURE.search(line)]
    assert failures == [], "server tracebacks/errors:\n" + "\n".join(failures[:40])
    broken = await sync_to_async(broken_chains)([c.session_id for c in [speaker, *attackers]])
    assert broken == [], broken

    rows = [
        (
            "hostile messages sent",
            f"{total} ({sent['with_speech']} on the speech call, {sent['attack']} on {ATTACKERS} attackers, {sent['refused_by_close']} after a close)",
        ),
        (
            "frames over 1 MiB (socket closed by daphne)",
            f"{sent['oversize_closing']}; close codes {closed_by_server}",
        ),
        ("error codes answered", ", ".join(sorted(codes))),
        ("fatal errors on the speech call", "0"),
        ("speech during the flood heard", repr(final["text"])),
        (
            "agent audio after the flood",
            f"reply {after['reply_id']}: its first audio {answered_s:.2f} s after the caller's next words",
        ),
        ("locked calls", f"0 of {1 + ATTACKERS} (all resumed on a new socket)"),
        ("daphne tracebacks / ERROR lines", "0"),
        ("verify_audit", f"OK ({1 + ATTACKERS} chains)"),
        ("flood duration", f"{flood_end - t0:.1f} s"),
    ]
    print("\nhostile-input drill over the real socket (daphne, PostgreSQL, Redis, real models): held")
    for name, value in rows:
        print(f"  {name:<46} {value}")


def broken_chains(session_ids: list[str]) -> list[str]:
    from django.core.management import call_command
    from django.db import connection

    from triage.audit import verify_chain

    try:
        broken = [
            f"{sid[:8]}: {link.problem}" for sid in session_ids if (link := verify_chain(sid)) is not None
        ]
        call_command("verify_audit")  # every chain in the database: raises CommandError if one is broken
        return broken
    finally:
        connection.close()  # this worker thread's connection: the test database is dropped later
