"""The patient socket under bad input (docs/protocol.md §4): every case gets a clear,
non-fatal error, and the call goes on — a valid message afterwards still works, the session
row is still open and its audit chain verifies. Runs the real consumer, real voice pipeline
and real database, through channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import struct
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.speech import frames, silence, speech_pcm16k
from triage import protocol as proto
from triage import services
from triage.audit import verify_chain
from triage.live import LiveCall
from triage.models import AuditEvent, TriageSession, Turn

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = [(b"origin", b"http://127.0.0.1")]
UTTERANCE = "I have had a headache since this morning."
FRAME_20MS = bytes(640)


class Inbox:
    """Everything the server sent, in order: JSON events, and binary audio counted per reply."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.events: list[dict] = []
        self.audio: dict[int, int] = {}
        self.closed: dict | None = None

    async def next(self, timeout: float) -> dict:
        message = await self.communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            self.closed = message
            return {"type": "_closed", "code": message.get("code")}
        if message.get("bytes") is not None:
            (reply_id,) = struct.unpack("<I", message["bytes"][:4])
            self.audio[reply_id] = self.audio.get(reply_id, 0) + len(message["bytes"]) - 4
            return {"type": "_audio", "reply_id": reply_id}
        event = json.loads(message["text"])
        self.events.append(event)
        return event

    async def until(self, predicate, timeout: float = 20) -> dict:
        async def loop():
            while True:
                event = await self.next(timeout)
                if predicate(event):
                    return event
                if event["type"] == "_closed":
                    raise AssertionError(f"socket closed ({event['code']}); events: {self.events[-10:]}")

        return await asyncio.wait_for(loop(), timeout)

    async def seen(self, predicate, timeout: float = 20) -> dict:
        """Like ``until``, but an event that already arrived counts too."""
        for event in self.events:
            if predicate(event):
                return event
        return await self.until(predicate, timeout)

    def errors(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "error"]


class Call:
    def __init__(self, session: TriageSession, token: str, communicator: WebsocketCommunicator, inbox: Inbox):
        self.session, self.token, self.communicator, self.inbox = session, token, communicator, inbox
        self.ready: dict = {}

    async def send(self, *, text: str | None = None, data: bytes | None = None) -> None:
        if text is not None:
            await self.communicator.send_to(text_data=text)
        else:  # send_input, not send_to: send_to refuses an empty frame, which is a case here
            await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    async def ping(self, timeout: float = 20) -> dict:
        nonce = uuid.uuid4().hex
        await self.send(text=json.dumps({"type": "ping", "t": nonce}))
        return await self.inbox.until(lambda e: e["type"] == "pong" and e["t"] == nonce, timeout)


async def connect(token: str) -> tuple[WebsocketCommunicator, Inbox]:
    communicator = WebsocketCommunicator(application, f"/ws/patient/{token}/", headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=120)
    assert connected
    return communicator, Inbox(communicator)


async def open_call() -> Call:
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    communicator, inbox = await connect(token)
    call = Call(session, token, communicator, inbox)
    call.ready = await inbox.until(lambda e: e["type"] == "ready", timeout=180)
    return call


async def close_call(call: Call) -> None:
    if call.inbox.closed is None:
        await call.send(text=json.dumps({"type": "end"}))
        await call.inbox.until(lambda e: e["type"] in ("ended", "_closed"), timeout=30)
    await call.communicator.disconnect()


@pytest.fixture(scope="module")
def voice_models():
    """Load the process-wide voice runtime once, outside any event loop (it can take minutes
    on a busy 2-core machine); every call in this module then starts at once."""
    from triage.runtime import load_runtime_blocking

    speech_pcm16k(UTTERANCE)  # synthesize now: Piper in a test's event loop would stall the server side
    return load_runtime_blocking()


@pytest.fixture(autouse=True)
async def end_leftover_calls():
    """A failed test can leave a call running (its pipeline tasks, its control listener):
    end them on this test's event loop, so the loop closes and later tests start clean."""
    yield
    import triage.live

    for leftover in list(triage.live._calls.values()):
        await asyncio.wait_for(leftover.end("test_teardown"), timeout=30)


@pytest.fixture
async def call(voice_models):
    live = await open_call()
    try:
        yield live
    finally:
        await close_call(live)


@database_sync_to_async
def session_record(session_id):
    session = TriageSession.objects.get(pk=session_id)
    kinds = list(
        AuditEvent.objects.filter(session_id=session_id).order_by("seq").values_list("kind", flat=True)
    )
    return session, kinds, verify_chain(session_id)


async def assert_call_goes_on(call: Call) -> None:
    """After bad input: text and audio still work, nothing was recorded as broken."""
    errors_before = len(call.inbox.errors())
    await call.ping()
    for frame in frames(silence(200)):
        await call.send(data=frame)
    await call.send(text=json.dumps({"type": "playback", "reply_id": 0, "played_ms": 0}))
    await call.ping()  # answered after the frames and the report above were handled
    assert call.inbox.errors()[errors_before:] == [], "valid messages after the bad one were refused"
    live = LiveCall.get(str(call.session.pk))
    assert live is not None and live.attached and not live.ended
    session, kinds, broken = await session_record(call.session.pk)
    assert session.is_open and session.status == TriageSession.Status.ACTIVE
    assert "socket_connected" in kinds and "socket_disconnected" not in kinds and "session_ended" not in kinds
    assert broken is None


def text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


BAD_INPUT = [
    # (case, payload: bytes for a binary frame, str/dict for a text frame, expected code)
    ("odd byte count", bytes(641), proto.ErrorCode.BAD_FRAME_SIZE),
    ("not whole 10 ms blocks", bytes(100), proto.ErrorCode.BAD_FRAME_SIZE),
    ("empty binary frame", b"", proto.ErrorCode.BAD_FRAME_SIZE),
    ("frame over the maximum", bytes(9600 + 320), proto.ErrorCode.FRAME_TOO_LARGE),
    ("one-megabyte frame", bytes(1 << 20), proto.ErrorCode.FRAME_TOO_LARGE),
    ("text where audio is expected", "RIFF$\x00\x00\x00WAVEfmt ", proto.ErrorCode.BAD_JSON),
    (
        "audio as base64 JSON",
        {"type": "audio", "data": base64.b64encode(bytes(640)).decode()},
        proto.ErrorCode.UNKNOWN_TYPE,
    ),
    ("JSON that is not an object", [1, 2, 3], proto.ErrorCode.BAD_JSON),
    ("type that is not a string", {"type": 7}, proto.ErrorCode.BAD_JSON),
    ("missing type", {"reply_id": 1}, proto.ErrorCode.BAD_JSON),
    ("unknown message type", {"type": "take_over"}, proto.ErrorCode.UNKNOWN_TYPE),
    (
        "playback with a negative reply id",
        {"type": "playback", "reply_id": -1, "played_ms": 10},
        proto.ErrorCode.BAD_FIELD,
    ),
    (
        "playback with a text duration",
        {"type": "playback", "reply_id": 1, "played_ms": "lots"},
        proto.ErrorCode.BAD_FIELD,
    ),
    (
        "playback with a boolean id",
        {"type": "playback", "reply_id": True, "played_ms": 1},
        proto.ErrorCode.BAD_FIELD,
    ),
    ("playback without fields", {"type": "playback"}, proto.ErrorCode.BAD_FIELD),
    ("hello for protocol 2", {"type": "hello", "protocol": 2}, proto.ErrorCode.UNSUPPORTED_PROTOCOL),
    ("text over the maximum", {"type": "ping", "t": "x" * 5000}, proto.ErrorCode.MESSAGE_TOO_LARGE),
    # ~2 KB, under the size limit: json.loads alone would raise RecursionError on these.
    ("1,000 nested arrays", "[" * 1000 + "]" * 1000, proto.ErrorCode.BAD_JSON),
    (
        "ping with t nested 1,000 deep",
        '{"type": "ping", "t": ' + "[" * 1000 + "]" * 1000 + "}",
        proto.ErrorCode.BAD_JSON,
    ),
    ("unclosed nesting", '{"type": "ping", "t": ' + '{"a": ' * 300, proto.ErrorCode.BAD_JSON),
]


@pytest.mark.models
@pytest.mark.parametrize(("payload", "code"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
async def test_bad_input_gets_a_clear_error_and_the_call_goes_on(call, payload, code):
    if isinstance(payload, bytes):
        await call.send(data=payload)
    else:
        await call.send(text=text(payload))
    error = await call.inbox.until(lambda e: e["type"] == "error")
    assert error["code"] == code
    assert error["fatal"] is False
    assert isinstance(error["message"], str) and len(error["message"]) > 10
    await assert_call_goes_on(call)


@pytest.mark.models
async def test_message_flood_is_rate_limited_told_once_and_the_call_goes_on(call):
    limit = 200  # TRIAGE_MAX_MESSAGES_PER_SECOND
    for i in range(3 * limit):
        await call.send(text=json.dumps({"type": "ping", "t": i}))
    # Everything the server sends for the burst arrives within a couple of seconds.
    with pytest.raises(asyncio.TimeoutError):
        await call.inbox.until(lambda e: False, timeout=2)
    pongs = [e for e in call.inbox.events if e["type"] == "pong"]
    limited = [e for e in call.inbox.errors() if e["code"] == proto.ErrorCode.RATE_LIMITED]
    assert len(limited) == 1 and limited[0]["fatal"] is False, "told once, not once per dropped message"
    assert limit * 0.9 <= len(pongs) < 2 * limit, f"{len(pongs)} pongs: the excess was dropped"
    await asyncio.sleep(1.1)
    await assert_call_goes_on(call)


@pytest.mark.models
async def test_audio_faster_than_real_time_is_dropped_with_an_error(call):
    # 40 maximum-size frames = 12 s of audio in a burst: more than 2x real time allows.
    for _ in range(40):
        await call.send(data=bytes(9600))
    error = await call.inbox.until(lambda e: e["type"] == "error")
    assert error["code"] == proto.ErrorCode.RATE_LIMITED and error["fatal"] is False
    assert "real time" in error["message"]
    await asyncio.sleep(1.1)
    await assert_call_goes_on(call)


@pytest.mark.models
async def test_a_second_socket_is_refused_and_the_first_goes_on(call):
    second, inbox2 = await connect(call.token)
    error = await inbox2.until(lambda e: e["type"] == "error")
    assert error["code"] == proto.ErrorCode.SESSION_IN_USE and error["fatal"] is True
    closed = await inbox2.until(lambda e: e["type"] == "_closed", timeout=10)
    assert closed["code"] == proto.CLOSE_SESSION_IN_USE
    await second.disconnect()
    await assert_call_goes_on(call)


@pytest.mark.models
async def test_reconnect_resumes_the_call_and_the_audit_trail_shows_the_gap(call):
    await call.inbox.until(lambda e: e["type"] == "agent_reply_start")  # the greeting is under way
    await call.communicator.disconnect()  # the network drops
    await asyncio.sleep(0.3)
    live = LiveCall.get(str(call.session.pk))
    assert live is not None and not live.attached and not live.ended, "the call waits for the patient"

    call.communicator, call.inbox = await connect(call.token)
    ready = await call.inbox.until(lambda e: e["type"] == "ready")
    assert ready["resumed"] is True and ready["session_id"] == str(call.session.pk)
    await call.ping()
    session, kinds, broken = await session_record(call.session.pk)
    assert kinds.count("socket_connected") == 1
    gap = kinds.index("socket_disconnected")
    assert kinds.index("socket_reconnected") > gap
    assert session.is_open and broken is None


@pytest.mark.models
async def test_a_reconnect_while_the_call_is_still_starting_waits_for_it(voice_models, monkeypatch):
    """A client may give up and reconnect while the first socket's call is still starting
    (models loading take minutes on a busy machine): the second socket must get the same,
    started call, not a half-built one."""
    import triage.live

    real_get_runtime = triage.live.get_runtime

    async def slow_get_runtime():  # the real runtime, 1.5 s late: a start still in progress
        await asyncio.sleep(1.5)
        return await real_get_runtime()

    monkeypatch.setattr(triage.live, "get_runtime", slow_get_runtime)
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="", pregnant=None, consent=True
    )
    first, _ = await connect(token)
    await asyncio.sleep(0.3)
    starting = LiveCall.get(str(session.pk))
    assert starting is not None and starting.voice is None, "the call is still starting"
    await first.disconnect()  # the client gives up on the first socket and reconnects
    second, inbox = await connect(token)
    call = Call(session, token, second, inbox)
    call.ready = await inbox.until(lambda e: e["type"] == "ready", timeout=60)
    assert call.ready["session_id"] == str(session.pk) and call.ready["output"]["sample_rate"] > 0
    assert LiveCall.get(str(session.pk)) is starting and starting.voice is not None
    await inbox.until(lambda e: e["type"] == "agent_reply_start", timeout=60)  # the greeting
    await call.ping()
    await close_call(call)


@pytest.mark.models
async def test_end_ends_the_call_and_a_later_connect_is_refused(call):
    await call.send(text=json.dumps({"type": "end"}))
    ended = await call.inbox.until(lambda e: e["type"] == "ended")
    assert ended["reason"] == "patient_ended"
    closed = await call.inbox.until(lambda e: e["type"] == "_closed")
    assert closed["code"] == 1000
    session, kinds, broken = await session_record(call.session.pk)
    assert session.status == TriageSession.Status.ENDED and "session_ended" in kinds and broken is None

    again, inbox = await connect(call.token)
    error = await inbox.until(lambda e: e["type"] == "error")
    assert error["code"] == proto.ErrorCode.SESSION_ENDED and error["fatal"] is True
    assert (await inbox.until(lambda e: e["type"] == "_closed"))["code"] == proto.CLOSE_SESSION_ENDED
    await again.disconnect()


async def test_unknown_token_is_refused_with_a_reason():
    communicator, inbox = await connect("not-a-real-token")
    error = await inbox.until(lambda e: e["type"] == "error")
    assert error["code"] == proto.ErrorCode.SESSION_NOT_FOUND and error["fatal"] is True
    assert (await inbox.until(lambda e: e["type"] == "_closed"))["code"] == proto.CLOSE_SESSION_NOT_FOUND
    await communicator.disconnect()


async def test_other_origins_are_refused():
    session, token = await database_sync_to_async(services.create_session)(
        subject="self", age_band="", pregnant=None, consent=True
    )
    communicator = WebsocketCommunicator(
        application, f"/ws/patient/{token}/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=30)
    assert not connected
    _, kinds, _ = await session_record(session.pk)
    assert "socket_connected" not in kinds


@pytest.mark.models
async def test_speech_after_every_kind_of_bad_input_is_still_heard(voice_models):
    """The strongest 'goes on': bad input interleaved with a real utterance, streamed in real
    time, and the patient's words still come back as the turn's transcript and are stored."""
    call = await open_call()
    try:
        greeting = await call.inbox.until(lambda e: e["type"] == "agent_reply_end", timeout=60)
        await call.send(
            text=json.dumps({"type": "playback", "reply_id": greeting["reply_id"], "played_ms": 3000})
        )
        bad = [c[1] for c in BAD_INPUT]
        speech = frames(silence(300) + speech_pcm16k(UTTERANCE) + silence(1500))
        for i, frame in enumerate(speech):
            if i % 7 == 3 and bad:
                payload = bad.pop(0)
                await call.send(
                    **({"data": payload} if isinstance(payload, bytes) else {"text": text(payload)})
                )
            await call.send(data=frame)
            await asyncio.sleep(0.02)
        final = await call.inbox.until(lambda e: e["type"] == "transcript" and e["final"], timeout=60)
        assert "headache" in final["text"].lower() and "morning" in final["text"].lower()
        codes = [e["code"] for e in call.inbox.errors()]
        assert sorted(codes) == sorted(c[2] for c in BAD_INPUT), codes
        # The answer (it may have started before the final transcript arrived: speculation).
        await call.inbox.seen(
            lambda e: e["type"] == "agent_reply_start" and e["reply_id"] != greeting["reply_id"], timeout=60
        )
    finally:
        await close_call(call)

    @database_sync_to_async
    def stored():
        return list(
            Turn.objects.filter(session=call.session, speaker="patient").values_list("text", flat=True)
        )

    patient_turns = await stored()
    assert len(patient_turns) == 1 and "headache" in patient_turns[0].lower()
    _, _, broken = await session_record(call.session.pk)
    assert broken is None


def test_the_protocol_document_matches_the_code():
    """docs/protocol.md is the contract for clients: its tables must be exactly what the code does."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "protocol.md").read_text()

    def section(title: str) -> str:
        return doc.split(title, 1)[1].split("\n## ", 1)[0]

    def table_names(text: str) -> set[str]:
        return set(re.findall(r"^\| `(\w+)` \|", text, re.M))

    assert doc.splitlines()[0].endswith(f"version {proto.PROTOCOL_VERSION}")
    assert table_names(section("## 2.")) == proto.CLIENT_TYPES
    senders = ("live.py", "consumers/patient.py", "admission/line.py", "admission/announce.py")
    sources = "".join((root / "triage" / name).read_text() for name in senders)
    # what the senders send: dicts built in place, and the typed messages of triage/protocol.py
    # they construct (``proto.Ready.for_call(...)``, ``proto.Pong(...)``; match patterns are not calls)
    sent = set(re.findall(r'"type": "(\w+)"', sources))
    for node in ast.walk(ast.parse(sources)):
        if isinstance(node, ast.Call):
            func = (
                node.func.value
                if isinstance(node.func, ast.Attribute) and node.func.attr == "for_call"
                else node.func
            )
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "proto"
            ):
                cls = getattr(proto, func.attr)
                if isinstance(cls, type) and issubclass(cls, proto.Message):
                    sent.add(cls.TYPE)
    assert table_names(section("## 3.")) == sent

    rows = re.findall(r"^\| `(\w+)` \| (no|yes \(close (\d+)\)) \|", section("## 4."), re.M)
    assert {code for code, _, _ in rows} == {v for k, v in vars(proto.ErrorCode).items() if k.isupper()}
    assert {code: int(close) for code, _, close in rows if close} == {
        proto.ErrorCode.SESSION_NOT_FOUND: proto.CLOSE_SESSION_NOT_FOUND,
        proto.ErrorCode.SESSION_ENDED: proto.CLOSE_SESSION_ENDED,
        proto.ErrorCode.SESSION_IN_USE: proto.CLOSE_SESSION_IN_USE,
        proto.ErrorCode.MODELS_UNAVAILABLE: proto.CLOSE_INTERNAL,
        proto.ErrorCode.DRAINING: proto.CLOSE_DRAINING,
        proto.ErrorCode.CALL_ELSEWHERE: proto.CLOSE_CALL_ELSEWHERE,
        proto.ErrorCode.LINE_FREE_ELSEWHERE: proto.CLOSE_LINE_FREE_ELSEWHERE,
    }

    # Numbers: the documented defaults are the settings' defaults and the protocol constants.
    settings_source = (root / "config" / "settings.py").read_text()
    for variable, default, written in [
        ("TRIAGE_MAX_AUDIO_FRAME_BYTES", 9600, "9 600 bytes"),
        ("TRIAGE_MAX_TEXT_MESSAGE_BYTES", 4096, "4 096"),
        ("TRIAGE_MAX_MESSAGES_PER_SECOND", 200, "(default 200)"),
    ]:
        assert f'"{variable}", "{default}"' in settings_source and written in doc
    rate = int(proto.INPUT_BYTES_PER_SECOND * proto.MAX_AUDIO_REALTIME_FACTOR)
    assert f"{rate:,} bytes a second".replace(",", " ") in doc
    assert f"{int(rate * proto.AUDIO_BURST_SECONDS):,} bytes".replace(",", " ") in doc
    assert proto.INPUT_SAMPLE_RATE == 16000 and "16 000 Hz" in doc
    assert f"multiple of {proto.FRAME_QUANTUM_BYTES} bytes" in doc
    assert f'`header`: `"{proto.OUTPUT_HEADER}"`' in doc


@pytest.mark.models
async def test_a_failure_handling_one_message_is_a_non_fatal_error(call, monkeypatch, caplog):
    """Whatever goes wrong with one message (here: the parser itself fails), the client gets
    ``internal_error`` and the call goes on; the log names the failure, not the payload."""

    def broken(text, max_bytes):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(proto, "parse_text_message", broken)
    secret = uuid.uuid4().hex
    await call.send(text=json.dumps({"type": "ping", "t": secret}))
    error = await call.inbox.until(lambda e: e["type"] == "error")
    assert error == {
        "type": "error",
        "code": proto.ErrorCode.INTERNAL,
        "message": "The server could not handle that message.",
        "fatal": False,
    }
    monkeypatch.undo()
    await assert_call_goes_on(call)
    logged = [r for r in caplog.records if r.name == "triage.consumers.patient"]
    assert any("KeyError" in r.getMessage() for r in logged)
    assert not any(secret in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.models
async def test_a_consumer_exception_detaches_the_call_and_a_reconnect_resumes_it(call, monkeypatch):
    """An exception that escapes the consumer (daphne then closes with 1011 and never calls
    disconnect()) still detaches the call: the reconnect resumes it instead of 4409."""
    from triage.consumers.patient import PatientConsumer

    await call.inbox.until(lambda e: e["type"] == "agent_reply_start")  # the greeting is under way

    async def broken(self, text_data=None, bytes_data=None):
        raise RuntimeError("escaped the per-message guard")

    monkeypatch.setattr(PatientConsumer, "receive", broken)
    await call.send(text=json.dumps({"type": "ping", "t": 1}))
    with pytest.raises(RuntimeError, match="escaped"):  # the consumer died of it
        while True:  # what it sent before (the greeting's audio), then its exception
            await call.communicator.receive_output(timeout=5)
    monkeypatch.undo()
    live = LiveCall.get(str(call.session.pk))
    assert live is not None and not live.attached and not live.ended, "detached, waiting for the patient"

    call.communicator, call.inbox = await connect(call.token)
    ready = await call.inbox.until(lambda e: e["type"] == "ready")
    assert ready["resumed"] is True and ready["session_id"] == str(call.session.pk)
    await call.ping()
    session, kinds, broken_link = await session_record(call.session.pk)
    gap = kinds.index("socket_disconnected")
    assert kinds.count("socket_connected") == 1 and kinds.index("socket_reconnected") > gap
    assert session.is_open and broken_link is None

    @database_sync_to_async
    def disconnect_payload():
        return AuditEvent.objects.get(session_id=call.session.pk, kind="socket_disconnected").payload

    assert (await disconnect_payload()) == {"code": "consumer_stopped"}


@pytest.mark.parametrize(
    "path", ["/ws/nothing-here/", "/ws/patient//", "/ws/patient/abc/extra/", "/ws/dashboard", "/"]
)
async def test_unknown_socket_paths_are_closed_with_4404_and_no_traceback(path, caplog):
    communicator = WebsocketCommunicator(application, path, headers=ORIGIN)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await communicator.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
