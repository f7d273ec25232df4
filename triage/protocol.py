"""Patient WebSocket protocol (see docs/protocol.md): constants, validation, error codes, and
one frozen dataclass per message, both ways.

Client messages are validated here, at the edge: ``parse_text_message`` returns a typed message
or raises ``ProtocolError``. Server messages are built as dataclasses and sent as
``message.to_dict()``."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
INPUT_SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2
# Binary audio frames must hold whole 10 ms blocks (webrtcvad works on 10/20/30 ms).
FRAME_QUANTUM_BYTES = INPUT_SAMPLE_RATE // 100 * BYTES_PER_SAMPLE  # 320
INPUT_BYTES_PER_SECOND = INPUT_SAMPLE_RATE * BYTES_PER_SAMPLE
# A microphone produces audio in real time; the network may bunch it up. Audio arriving faster
# than this (averaged with a burst allowance) is a flood: the excess is dropped.
MAX_AUDIO_REALTIME_FACTOR = 2.0
AUDIO_BURST_SECONDS = 2.0
# Agent audio frames start with the reply id (uint32 little-endian).
OUTPUT_HEADER = "uint32le reply_id"
# No client message needs more than a few levels; deeper JSON is refused before it is parsed
# (json.loads recurses per level: ~1,000 '[' in a 4 KiB frame would raise RecursionError).
MAX_JSON_DEPTH = 16


class ErrorCode:
    BAD_FRAME_SIZE = "bad_frame_size"
    FRAME_TOO_LARGE = "frame_too_large"
    MESSAGE_TOO_LARGE = "message_too_large"
    BAD_JSON = "bad_json"
    UNKNOWN_TYPE = "unknown_message_type"
    BAD_FIELD = "bad_field"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    RATE_LIMITED = "rate_limited"
    SESSION_IN_USE = "session_in_use"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_ENDED = "session_ended"
    MODELS_UNAVAILABLE = "models_unavailable"
    INTERNAL = "internal_error"
    DRAINING = "server_draining"  # this process is restarting: reconnect (another node takes it)
    CALL_ELSEWHERE = "call_elsewhere"  # another node holds this call: reconnect (the balancer routes it)
    LINE_FREE_ELSEWHERE = "line_free_elsewhere"  # a waiting caller's slot is held on another node: go there


# Close codes (4000-4999 are free for applications).
CLOSE_SESSION_NOT_FOUND = 4404
CLOSE_SESSION_IN_USE = 4409
CLOSE_SESSION_ENDED = 4410
CLOSE_INTERNAL = 4500
CLOSE_DRAINING = 4503  # retryable: the load balancer sends the reconnect to a ready node
CLOSE_CALL_ELSEWHERE = 4421  # retryable: the call's owner holds its lease (triage/ownership.py)
CLOSE_LINE_FREE_ELSEWHERE = 4422  # retryable at once: reconnect with ?node= (triage/admission/)


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- messages ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A JSON text message: ``to_dict()`` is what goes on the wire (``type`` first). Fields named
    in ``OPTIONAL`` are left out while they are None."""

    TYPE: ClassVar[str] = ""
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.name not in self.OPTIONAL:
                out[f.name] = value
        return out


# client -> server (§2) and its answer where the shape is the same


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Client: states its protocol version; server: the answer with its own."""

    TYPE: ClassVar[str] = "hello"
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class Playback(Message):
    TYPE: ClassVar[str] = "playback"
    reply_id: int
    played_ms: float


@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE: ClassVar[str] = "ping"
    t: Any = None  # any JSON value, echoed in the pong


@dataclass(frozen=True, slots=True)
class End(Message):
    TYPE: ClassVar[str] = "end"


ClientMessage = Hello | Playback | Ping | End
CLIENT_TYPES = {cls.TYPE for cls in (Hello, Playback, Ping, End)}


# server -> client (§1a, §3); the pipeline's events are mapped to these in triage/live.py


def output_format(sample_rate: int) -> dict[str, Any]:
    """The agent's audio as announced in ``queued`` and ``ready``."""
    return {"format": "s16le", "sample_rate": sample_rate, "channels": 1}


@dataclass(frozen=True, slots=True)
class Queued(Message):
    TYPE: ClassVar[str] = "queued"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"output"})
    position: int
    waiting: int
    text: str
    emergency: str
    output: dict[str, Any] | None = None  # output_format(), when the server can speak


@dataclass(frozen=True, slots=True)
class Admitted(Message):
    TYPE: ClassVar[str] = "admitted"
    waited_ms: int


@dataclass(frozen=True, slots=True)
class Ready(Message):
    TYPE: ClassVar[str] = "ready"
    protocol: int
    session_id: str
    resumed: bool
    node: str
    input: dict[str, Any]
    output: dict[str, Any]
    state: str

    @classmethod
    def for_call(
        cls, *, session_id: str, resumed: bool, node: str, max_frame_bytes: int, output_rate: int, state: str
    ) -> Ready:
        return cls(
            protocol=PROTOCOL_VERSION,
            session_id=session_id,
            resumed=resumed,
            node=node,
            input={
                "format": "s16le",
                "sample_rate": INPUT_SAMPLE_RATE,
                "channels": 1,
                "frame_quantum_bytes": FRAME_QUANTUM_BYTES,
                "max_frame_bytes": max_frame_bytes,
            },
            output=output_format(output_rate) | {"header": OUTPUT_HEADER},
            state=state,
        )


@dataclass(frozen=True, slots=True)
class State(Message):
    """A turn-state transition (voice.events.StateChanged)."""

    TYPE: ClassVar[str] = "state"
    state: str
    previous: str
    cause: str


@dataclass(frozen=True, slots=True)
class Transcript(Message):
    """A partial caption (with ``stable``) or a turn's final words (without)."""

    TYPE: ClassVar[str] = "transcript"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"stable"})
    final: bool
    turn_id: int
    text: str
    stable: str | None  # partials only: the words that will not change
    confidence: float  # avg log-prob, 3 decimals


@dataclass(frozen=True, slots=True)
class Escalation(Message):
    TYPE: ClassVar[str] = "escalation"
    level: int
    disposition: str
    script: str


@dataclass(frozen=True, slots=True)
class AgentReplyStart(Message):
    TYPE: ClassVar[str] = "agent_reply_start"
    reply_id: int
    kind: str


@dataclass(frozen=True, slots=True)
class AgentText(Message):
    TYPE: ClassVar[str] = "agent_text"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"answer"})
    reply_id: int
    clause: int
    text: str
    answer: bool | None = None


@dataclass(frozen=True, slots=True)
class AgentReplyEnd(Message):
    TYPE: ClassVar[str] = "agent_reply_end"
    reply_id: int
    interrupted: bool


@dataclass(frozen=True, slots=True)
class Pause(Message):
    """Speech over the agent: hold playback, keep the buffer."""

    TYPE: ClassVar[str] = "pause"
    reply_id: int


@dataclass(frozen=True, slots=True)
class Resume(Message):
    TYPE: ClassVar[str] = "resume"
    reply_id: int


@dataclass(frozen=True, slots=True)
class Interrupt(Message):
    """Barge-in: stop playback, flush, answer with ``playback``."""

    TYPE: ClassVar[str] = "interrupt"
    reply_id: int


@dataclass(frozen=True, slots=True)
class ClinicianJoining(Message):
    TYPE: ClassVar[str] = "clinician_joining"
    text: str


@dataclass(frozen=True, slots=True)
class ClinicianTranscript(Message):
    """The words of the clinician who took the call, one utterance at a time (captions). No
    name: a clinician's login is not the patient's business (listeners get ``by`` added)."""

    TYPE: ClassVar[str] = "clinician_transcript"
    text: str


@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    t: Any = None


@dataclass(frozen=True, slots=True)
class Ended(Message):
    TYPE: ClassVar[str] = "ended"
    reason: str


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE: ClassVar[str] = "error"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"node", "retry_ms"})
    code: str
    message: str
    fatal: bool = False
    node: str | None = None  # call_elsewhere, line_free_elsewhere: the node to reconnect to
    retry_ms: int | None = None  # call_elsewhere: the owner's lease lapses in this long if it died


def parse_text_message(text: str, max_bytes: int) -> ClientMessage:
    if len(text.encode("utf-8")) > max_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"Text messages are limited to {max_bytes} bytes.")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise ProtocolError(
            ErrorCode.BAD_JSON, f"Text messages may nest objects and arrays at most {MAX_JSON_DEPTH} deep."
        )
    try:
        data = json.loads(text)
    # ValueError: also an integer over Python's digit limit. RecursionError: a second line of defence.
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise ProtocolError(ErrorCode.BAD_JSON, f"Text messages must be JSON objects ({reason}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(ErrorCode.BAD_JSON, "Text messages must be JSON objects with a string 'type'.")
    if data["type"] not in CLIENT_TYPES:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type {data['type'][:32]!r}.")
    if data["type"] == "playback":
        reply_id, played_ms = data.get("reply_id"), data.get("played_ms")
        if not isinstance(reply_id, int) or isinstance(reply_id, bool) or reply_id < 0:
            raise ProtocolError(ErrorCode.BAD_FIELD, "playback.reply_id must be a non-negative integer.")
        if (
            not isinstance(played_ms, int | float)
            or isinstance(played_ms, bool)
            or not 0 <= played_ms < 3.6e6
        ):
            raise ProtocolError(ErrorCode.BAD_FIELD, "playback.played_ms must be a number of milliseconds.")
    if data["type"] == "hello":
        version = data.get("protocol", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_PROTOCOL,
                f"Protocol {version!r} is not supported; this server speaks {PROTOCOL_VERSION}.",
            )
    match data["type"]:
        case "playback":
            return Playback(reply_id=data["reply_id"], played_ms=float(data["played_ms"]))
        case "hello":
            return Hello(protocol=data.get("protocol", PROTOCOL_VERSION))
        case "ping":
            return Ping(t=data.get("t"))
    return End()


def json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text, without parsing it (brackets inside strings
    do not count). Linear in the text, no recursion: safe on any input."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def validate_audio_frame(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise ProtocolError(ErrorCode.FRAME_TOO_LARGE, f"Audio frames are limited to {max_bytes} bytes.")
    if len(data) == 0 or len(data) % FRAME_QUANTUM_BYTES:
        raise ProtocolError(
            ErrorCode.BAD_FRAME_SIZE,
            f"Audio frames must be 16 kHz s16le mono in whole 10 ms blocks ({FRAME_QUANTUM_BYTES} bytes); got {len(data)} bytes.",
        )
