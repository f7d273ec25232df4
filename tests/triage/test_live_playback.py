"""Turn.played_ms: how much of each agent reply the patient heard, for replies that play to the
end as well as interrupted ones and the clinician hand-over.

A real LiveCall with its real VoiceSession (the process's voice runtime): the session keeps the
record of what was played (VoiceSession._heard_ms) and the host stores it. Replies are fixed text
the session speaks (``say``, real Piper audio), the test plays the patient's page: it reports
playback through ``playback_report`` (what PatientConsumer calls for a ``playback`` message), in
the order they arrive in a real call; the turn is stored by the production path (writer,
services.py, outbox) and flushed to a Turn row when the call ends.
"""

import asyncio
import struct
import time

import pytest
from channels.db import database_sync_to_async

from clinical_rules import PatientContext
from tests.triage.test_dashboard import PatientSide, new_session
from triage.live import LiveCall
from triage.models import AuditEvent, Turn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("voice_runtime"),
]


async def call_with_socket():
    session = await database_sync_to_async(new_session)()
    context = PatientContext(subject="self", age_band="18_to_64", pregnant=None)
    call = await LiveCall.open(str(session.pk), context)
    patient = PatientSide()
    call.attach(patient.send_json, patient.send_bytes)
    return session, call, patient


def sent_ms(call: LiveCall, patient: PatientSide, reply_id: int) -> float:
    """Audio the patient's socket got for the reply (uint32 reply id + s16le PCM per frame)."""
    samples = sum((len(f) - 4) // 2 for f in patient.audio if struct.unpack("<I", f[:4])[0] == reply_id)
    return samples * 1000.0 / call.voice.config.output_sample_rate


async def until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def ended(patient: PatientSide, reply_id: int) -> bool:
    return any(m.get("type") == "agent_reply_end" and m["reply_id"] == reply_id for m in patient.json)


async def stored_played_ms(
    session, call: LiveCall
) -> tuple[dict[int, float | None], dict[str, float | None]]:
    await call.end("test_done")  # stores the remaining Turn rows itself

    @database_sync_to_async
    def read():
        audited = {
            e.payload["reply_id"]: e.payload["played_ms"]
            for e in AuditEvent.objects.filter(session=session, kind="agent_turn")
        }
        turns = {t.text: t.played_ms for t in Turn.objects.filter(session=session, speaker="agent")}
        return audited, turns

    return await read()


async def test_a_reply_played_to_the_end_records_its_whole_duration():
    session, call, patient = await call_with_socket()
    # Played out, the client's report arriving after the pipeline closed the reply (the usual
    # order: the pipeline's playback estimate has no margin for network and buffering).
    first = await call.voice.say("How long has it hurt?", kind="question")
    await until(lambda: ended(patient, first), "the first reply to close on its playback estimate")
    await call.drain()  # stored before the report comes
    first_ms = sent_ms(call, patient, first)
    await call.playback_report(first, first_ms)
    # Played out, the report arriving first (the pipeline then closes the reply at once).
    second = await call.voice.say("Is it worse when you breathe?", kind="question")
    second_ms = sent_ms(call, patient, second)
    await call.playback_report(second, second_ms)
    await until(lambda: ended(patient, second), "the second reply to close on the report")

    audited, turns = await stored_played_ms(session, call)
    assert first_ms > 500 and second_ms > 500
    assert audited == {first: pytest.approx(first_ms, abs=0.1), second: pytest.approx(second_ms, abs=0.1)}
    assert turns == {
        "How long has it hurt?": pytest.approx(first_ms, abs=0.1),
        "Is it worse when you breathe?": pytest.approx(second_ms, abs=0.1),
    }
    assert [m["type"] for m in patient.json].count("agent_reply_end") == 2


async def test_an_interrupted_reply_records_what_the_client_played_after_the_interrupt():
    session, call, _ = await call_with_socket()
    cut = await call.voice.say(
        "Do you have a fever, or have you felt hot and shivery today?", kind="question"
    )
    await call.playback_report(cut, 200.0)  # queue ran dry mid-reply: not what was heard in the end
    assert await call.voice.interrupt() == cut
    await call.voice.wait_idle()  # the page has the stop
    await call.playback_report(cut, 640.0)
    # Interrupted and the client never answered: unknown, not the stale report.
    silent = await call.voice.say("Any allergies?", kind="question")
    await call.playback_report(silent, 100.0)
    assert await call.voice.interrupt() == silent
    await asyncio.sleep(call.voice.config.playback_report_timeout_ms / 1000 + 0.3)

    audited, _ = await stored_played_ms(session, call)
    assert audited == {cut: 640.0, silent: None}


async def test_a_late_report_for_a_finished_reply_is_not_kept():
    _, call, patient = await call_with_socket()
    reply = await call.voice.say("Thank you.", kind="question")
    await call.playback_report(reply, sent_ms(call, patient, reply))
    await until(lambda: ended(patient, reply), "the reply to close")
    await call.playback_report(reply, 300.0)
    voice = call.voice
    await call.end("test_done")
    assert voice._sent_ms == {} and voice._reports == {} and voice._played == {}
