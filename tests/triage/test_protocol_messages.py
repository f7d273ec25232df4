"""The patient protocol's messages as types (triage/protocol.py): client messages are validated
and typed at the edge, server messages are dataclasses whose wire form is docs/protocol.md's."""

import json
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from triage import protocol as proto
from triage.live import client_message
from voice import events as ev

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_client_messages_come_back_typed():
    assert proto.parse_text_message('{"type": "playback", "reply_id": 3, "played_ms": 120}', 4096) == (
        proto.Playback(reply_id=3, played_ms=120.0)
    )
    assert proto.parse_text_message('{"type": "ping", "t": [1, "x"]}', 4096) == proto.Ping(t=[1, "x"])
    assert proto.parse_text_message('{"type": "ping"}', 4096) == proto.Ping(t=None)
    assert proto.parse_text_message('{"type": "hello", "protocol": 1}', 4096) == proto.Hello(protocol=1)
    assert proto.parse_text_message('{"type": "end"}', 4096) == proto.End()
    with pytest.raises(FrozenInstanceError):
        proto.Playback(1, 2.0).reply_id = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, code",
    [
        ('{"type": "playback", "reply_id": -1, "played_ms": 5}', proto.ErrorCode.BAD_FIELD),
        ('{"type": "playback", "reply_id": true, "played_ms": 5}', proto.ErrorCode.BAD_FIELD),
        ('{"type": "playback", "reply_id": 1, "played_ms": "5"}', proto.ErrorCode.BAD_FIELD),
        ('{"type": "hello", "protocol": 2}', proto.ErrorCode.UNSUPPORTED_PROTOCOL),
        ('{"type": "dance"}', proto.ErrorCode.UNKNOWN_TYPE),
        ("[1]", proto.ErrorCode.BAD_JSON),
    ],
)
def test_bad_client_messages_are_refused_at_the_edge(text, code):
    with pytest.raises(proto.ProtocolError) as info:
        proto.parse_text_message(text, 4096)
    assert info.value.code == code


def test_server_messages_have_the_documented_wire_form():
    ready = proto.Ready.for_call(
        session_id="s", resumed=False, node="n", max_frame_bytes=3200, output_rate=24000, state="idle"
    ).to_dict()
    assert ready == {
        "type": "ready",
        "protocol": proto.PROTOCOL_VERSION,
        "session_id": "s",
        "resumed": False,
        "node": "n",
        "input": {
            "format": "s16le",
            "sample_rate": 16000,
            "channels": 1,
            "frame_quantum_bytes": 320,
            "max_frame_bytes": 3200,
        },
        "output": {"format": "s16le", "sample_rate": 24000, "channels": 1, "header": "uint32le reply_id"},
        "state": "idle",
    }
    assert proto.Queued(2, 5, "busy", "call 911").to_dict() == {
        "type": "queued",
        "position": 2,
        "waiting": 5,
        "text": "busy",
        "emergency": "call 911",
    }
    assert proto.Queued(1, 1, "t", "e", proto.output_format(16000)).to_dict()["output"] == {
        "format": "s16le",
        "sample_rate": 16000,
        "channels": 1,
    }
    assert proto.AgentText(7, 0, "Hello.").to_dict() == {
        "type": "agent_text",
        "reply_id": 7,
        "clause": 0,
        "text": "Hello.",
    }
    assert proto.AgentText(7, 0, "Hello.", answer=True).to_dict()["answer"] is True
    assert proto.Pong(None).to_dict() == {"type": "pong", "t": None}  # t echoed even when absent
    assert proto.ClinicianTranscript("Go to A&E now.").to_dict() == {
        "type": "clinician_transcript",
        "text": "Go to A&E now.",
    }
    assert proto.Error("bad_json", "no").to_dict() == {
        "type": "error",
        "code": "bad_json",
        "message": "no",
        "fatal": False,
    }


def test_every_message_type_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOC.read_text(encoding="utf-8"), re.M))
    types = {cls.TYPE for cls in _subclasses(proto.Message)}
    assert types and types <= documented, types - documented


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _documented_message_types() -> dict[str, set[str]]:
    """The ``type`` column of §2's and §3's message tables ('| type | fields | ...')."""
    tables: dict[str, set[str]] = {}
    section, in_table = "", False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line
        if line.startswith("| type | fields |"):
            in_table = True
            tables.setdefault(section, set())
        elif in_table and not line.startswith("|"):
            in_table = False
        elif in_table and (m := re.match(r"^\| `([a-z_]+)` \|", line)):
            tables[section].add(m.group(1))
    return tables


def test_every_documented_message_type_has_a_dataclass():
    tables = _documented_message_types()
    client = next(types for section, types in tables.items() if "Client" in section)
    server = next(types for section, types in tables.items() if "Server" in section)
    assert {"hello", "playback", "ping", "end"} <= client and {"state", "transcript", "error"} <= server
    typed = {cls.TYPE for cls in _subclasses(proto.Message)}
    assert client <= proto.CLIENT_TYPES and client <= typed
    assert server <= typed, f"documented without a dataclass: {sorted(server - typed)}"


def _wire(message) -> str:
    return json.dumps(message.to_dict())  # key order included: the bytes the page receives


def test_pipeline_events_keep_their_wire_form():
    """Each pipeline event's message, byte for byte as docs/protocol.md §3 has it (and as the
    hand-built dicts were before the messages were typed)."""
    cases = [
        (
            ev.StateChanged("listening", "user_speaking", "speech_started", 2, 1.0),
            '{"type": "state", "state": "user_speaking", "previous": "listening", "cause": "speech_started"}',
        ),
        (
            ev.PartialTranscript(3, "my chest", "my", -0.41234, 0.1, 1.0),
            '{"type": "transcript", "final": false, "turn_id": 3, "text": "my chest", "stable": "my",'
            ' "confidence": -0.412}',
        ),
        (
            ev.PartialTranscript(3, "my", "", -0.5, 0.1, 1.0),
            '{"type": "transcript", "final": false, "turn_id": 3, "text": "my", "stable": "",'
            ' "confidence": -0.5}',
        ),
        (
            ev.FinalTranscript(3, "my chest hurts", -0.2, 0.1, 0.5, 1.5, 2.0),
            '{"type": "transcript", "final": true, "turn_id": 3, "text": "my chest hurts", "confidence": -0.2}',
        ),
        (
            ev.EscalationRaised(3, 1, "emergency", ("RF-1",), ({"r": 1},), "Call 911.", True, 2.0),
            '{"type": "escalation", "level": 1, "disposition": "emergency", "script": "Call 911."}',
        ),
        (
            ev.AgentReplyStarted(4, 3, "question", "How old?", 2.0),
            '{"type": "agent_reply_start", "reply_id": 4, "kind": "question"}',
        ),
        (
            ev.AgentText(4, 0, "How old?", "rules", 2.0),
            '{"type": "agent_text", "reply_id": 4, "clause": 0, "text": "How old?", "answer": false}',
        ),
        (
            ev.AgentText(4, 1, "How old?", "rules", 2.0, answer=True),
            '{"type": "agent_text", "reply_id": 4, "clause": 1, "text": "How old?", "answer": true}',
        ),
        (
            ev.AgentReplyFinished(4, 3, "How old?", True, False, 3.0, 120.0),
            '{"type": "agent_reply_end", "reply_id": 4, "interrupted": true}',
        ),
        (ev.AgentInterrupted(4, 3, 2.5, 2.6), '{"type": "interrupt", "reply_id": 4}'),
        (ev.AgentPaused(4, 3, 2.5, 2.6), '{"type": "pause", "reply_id": 4}'),
        (ev.AgentResumed(4, 3, 80.0, 2.7), '{"type": "resume", "reply_id": 4}'),
        (
            ev.PipelineError("tts", "RuntimeError", "boom", 1.0),
            '{"type": "error", "code": "RuntimeError", "message": "boom", "fatal": false}',
        ),
    ]
    for event, wire in cases:
        message = client_message(event)
        assert isinstance(message, proto.Message), event
        assert _wire(message) == wire, event
    assert client_message(ev.SpeechPaused(3, 1.0)) is None  # not the page's business
    assert _wire(proto.ClinicianJoining("A nurse is joining.")) == (
        '{"type": "clinician_joining", "text": "A nurse is joining."}'
    )
