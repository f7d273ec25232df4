"""An answer's pause decode starts inside the VAD hangover (``early_pause_decode_ms``), so a
bare "No." ends its turn as the pause is declared, not one decode later (issue 12, response
onset). Real VAD, segmenter, endpointing, rules and Piper; the recognizer is a marked fake
that answers from the audio length and records when each decode started."""

from __future__ import annotations

import pytest

from evals.voice.simulate import comfort_noise, stream_pcm
from tests.fakes import ScriptedRecognizer
from tests.speech import speech_pcm16k
from tests.voice.test_pipeline_logic import _session, _tail
from voice.events import AgentReplyFinished, EndOfTurn, FinalTranscript, SpeechPaused, SpeechStarted

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]

STATEMENT = "I have had a headache since this morning."


def answer_recognizer() -> ScriptedRecognizer:
    """TEST DOUBLE: short audio "is" "No.", longer audio the statement; records each call."""
    return ScriptedRecognizer(lambda seconds, _partial: "No." if seconds < 1.5 else STATEMENT)


@pytest.mark.parametrize("early_ms", [100, 0])
async def test_a_bare_no_is_decoded_in_the_hangover_and_ends_at_the_pause(early_ms):
    rec = answer_recognizer()
    runtime, session, client = await _session(rec, early_pause_decode_ms=early_ms)
    try:
        await stream_pcm(session, speech_pcm16k(STATEMENT))
        first = await _tail(session, client, lambda e: isinstance(e, EndOfTurn))
        await _tail(
            session, client, lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == first.turn_id
        )
        # The caller answers after a moment of open microphone (which also fills the
        # segmenter's 300 ms pre-roll, so the decoded audio's start is known).
        await stream_pcm(session, comfort_noise(600))
        n_before = len(rec.calls)
        await stream_pcm(session, speech_pcm16k("No."))
        end = await _tail(session, client, lambda e: isinstance(e, EndOfTurn) and e.turn_id > first.turn_id)
        finals = [dur for dur, partial in rec.calls[n_before:] if not partial]
        assert len(finals) == 1, finals  # one final-quality decode for the answer, not two
        final = next(e for e in client.of(FinalTranscript) if e.turn_id == end.turn_id)
        assert final.text == "No."
        # Where in the pause the decode began, on the audio timeline: its audio runs from 300 ms
        # before the onset (pre-roll) to the frame it was started at - ~100 ms after the last
        # voiced frame (inside the hangover) with the early decode, ~200 ms (the pause) without.
        onset = next(e for e in client.of(SpeechStarted) if e.turn_id == end.turn_id).t
        speech_end = next(e for e in client.of(SpeechPaused) if e.turn_id == end.turn_id).t
        into_pause = onset - 0.3 + finals[0] - speech_end
        assert (into_pause < 0.15) == (early_ms > 0), into_pause
        assert end.reason == "complete_sentence"
    finally:
        await session.end("test")
        client.close()
        runtime.close()
