"""Turn.played_ms: how much of each agent reply the patient heard, for replies that play to the
end as well as interrupted ones and the clinician hand-over.

Events enter a real LiveCall through the callback the voice pipeline calls (``_on_event``) and
the client's reports through ``playback_report`` (what PatientConsumer calls for a ``playback``
message), in the order they arrive in a real call; the turn is stored by the production path
(writer, services.py, outbox) and flushed to a Turn row when the call ends.
"""

import time

import pytest
from channels.db import database_sync_to_async

from clinical_rules import PatientContext
from tests.triage.test_dashboard import PatientSide, new_session
from triage.live import LiveCall
from triage.models import AuditEvent, Turn
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

RATE = 16000


def pcm(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


async def call_with_socket():
    session = await database_sync_to_async(new_session)()
    call = LiveCall(str(session.pk), PatientContext(subject="self", age_band="18_to_64", pregnant=None))
    call.start_recording()
    patient = PatientSide()
    call.attach(patient.send_json, patient.send_bytes)
    return session, call, patient


async def speak(call: LiveCall, reply_id: int, text: str, frames_ms: list[int]) -> None:
    t = time.monotonic()
    await call._on_event(ev.AgentReplyStarted(reply_id, 1, "question", text, t))
    await call._on_event(ev.AgentText(reply_id, 0, text, "llm", t))
    for i, ms in enumerate(frames_ms):
        await call._on_event(ev.AgentAudio(reply_id, i, pcm(ms), RATE, t))


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
    await speak(call, 1, "How long has it hurt?", [500, 500, 300])
    await call._on_event(ev.AgentReplyFinished(1, 1, "How long has it hurt?", False, False, time.monotonic()))
    await call.drain()  # stored before the report comes
    await call.playback_report(1, 1300.0)
    # Played out, the report arriving first (the pipeline then closes the reply at once).
    await speak(call, 2, "Is it worse when you breathe?", [400, 400])
    await call.playback_report(2, 800.0)
    await call._on_event(
        ev.AgentReplyFinished(2, 1, "Is it worse when you breathe?", False, False, time.monotonic())
    )

    audited, turns = await stored_played_ms(session, call)
    assert audited == {1: 1300.0, 2: 800.0}
    assert turns == {"How long has it hurt?": 1300.0, "Is it worse when you breathe?": 800.0}
    assert [m["type"] for m in patient.json].count("agent_reply_end") == 2


async def test_an_interrupted_reply_records_what_the_client_played_after_the_interrupt():
    session, call, _ = await call_with_socket()
    await speak(call, 3, "Do you have a fever?", [500, 500])
    await call.playback_report(3, 200.0)  # queue ran dry mid-reply: not what was heard in the end
    t = time.monotonic()
    await call._on_event(ev.AgentInterrupted(3, 1, t, t))
    await call.playback_report(3, 640.0)
    await call._on_event(ev.AgentReplyFinished(3, 1, "Do you have", True, False, time.monotonic()))
    # Interrupted and the client never answered: unknown, not the stale report.
    await speak(call, 4, "Any allergies?", [500])
    await call.playback_report(4, 100.0)
    t = time.monotonic()
    await call._on_event(ev.AgentInterrupted(4, 2, t, t))
    await call._on_event(ev.AgentReplyFinished(4, 2, "", True, False, time.monotonic()))

    audited, _ = await stored_played_ms(session, call)
    assert audited == {3: 640.0, 4: None}


async def test_a_late_report_for_a_finished_reply_is_not_kept():
    _, call, _ = await call_with_socket()
    await speak(call, 5, "Thank you.", [300])
    await call._on_event(ev.AgentReplyFinished(5, 1, "Thank you.", False, False, time.monotonic()))
    await call.playback_report(5, 300.0)
    await call.end("test_done")
    assert call._played_ms == {} and call._sent_ms == {} and call._finished_played == {}
