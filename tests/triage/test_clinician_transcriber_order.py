"""Clinician utterances reach ``on_text`` in the order they were said, even when a later, shorter
one finishes decoding first (the fresh-clone CI saw the two turns swapped under load). The VAD is
real; the speech is the FAKE buzz of tests/fakes.py and the decoder a stand-in that is slow on
the long first utterance."""

import asyncio
import time

from tests.fakes import voiced_buzz
from tests.speech import frames, silence
from triage.clinician_speech import ClinicianTranscriber


async def test_a_slow_first_decode_still_comes_first():
    def decode(audio):
        long = audio.size > 16000 * 1.5
        time.sleep(0.4 if long else 0.0)  # runs in a worker thread, as Whisper does
        return "first utterance" if long else "second utterance"

    said: list[str] = []

    async def on_text(text, started, ended):
        said.append(text)

    transcriber = ClinicianTranscriber(decode, on_text)
    audio = silence(300) + voiced_buzz(2000) + silence(900) + voiced_buzz(600) + silence(900)
    for frame in frames(audio):
        transcriber.feed(frame)
        await asyncio.sleep(0)  # let the second decode start while the first still runs
    await transcriber.close()
    assert said == ["first utterance", "second utterance"]
