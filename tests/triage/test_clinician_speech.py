"""The clinician's words become clinician turns (issue 13 part 2): real Piper speech, webrtcvad
and the bundled Whisper tiny.en, stored through the audit trail and the turn outbox."""

import datetime as dt

import pytest
from channels.db import database_sync_to_async

from tests.speech import frames, silence, speech_pcm16k
from triage import audit, clinician_speech, services
from triage.models import AuditEvent, Turn

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def recognizer():
    from voice.asr import WhisperRecognizer
    from voice.provisioning import ModelSettings

    return WhisperRecognizer.from_settings(ModelSettings(asr_model="tiny.en"))


async def test_two_utterances_become_two_clinician_turns_in_order(recognizer):
    session, _ = await database_sync_to_async(services.create_session)(
        subject="self", age_band="18_to_64", pregnant=None, consent=True
    )
    sid = str(session.pk)
    spans: list[tuple[dt.datetime, dt.datetime]] = []

    async def on_text(text, started, ended):
        spans.append((started, ended))
        await database_sync_to_async(clinician_speech.record_clinician_turn)(
            sid, text, "nurse_asr", started, ended, clinician_speech.new_key(sid)
        )

    transcriber = clinician_speech.ClinicianTranscriber(lambda a: recognizer.transcribe(a).text, on_text)
    audio = (
        silence(300)
        + speech_pcm16k("Please go to the emergency department now.")
        + silence(900)
        + speech_pcm16k("Do not drive yourself.")
        + silence(200)
    )
    for frame in frames(audio):
        transcriber.feed(frame)
    await transcriber.close()  # the last utterance ends with the microphone

    @database_sync_to_async
    def stored():
        services.flush_pending_turns(sid)
        turns = list(Turn.objects.filter(session_id=sid).order_by("index"))
        events = list(AuditEvent.objects.filter(session_id=sid, kind="clinician_turn"))
        return turns, events, audit.verify_chain(sid)

    turns, events, broken = await stored()
    assert [t.speaker for t in turns] == ["clinician", "clinician"], [t.text for t in turns]
    assert "emergency department" in turns[0].text.lower() and "drive" in turns[1].text.lower()
    assert all(e.actor == "clinician:nurse_asr" for e in events) and broken is None
    assert all(start < end for start, end in spans) and spans[0][1] <= spans[1][0]
