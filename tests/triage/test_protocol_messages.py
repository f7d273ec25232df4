"""The patient protocol's messages as types (triage/protocol.py): client messages are validated
and typed at the edge, server messages are dataclasses whose wire form is docs/protocol.md's."""

import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from triage import protocol as proto

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
