"""The gap between a reply's acknowledgement and its question (issue 12, answer heard): Piper
ends every sentence with 100-250 ms of silence; after an acknowledgement only ACK_GAP_MS of it
is kept. Real Piper phrases through a real session (the recognizer is the logic tests' marked
fake, so the turn is deterministic)."""

from __future__ import annotations

import numpy as np
import pytest

from evals.voice.simulate import stream_pcm
from tests.voice.test_pipeline_logic import _session, _tail, halves_recognizer
from tests.voice.test_pipeline_logic import halves as halves  # the fixture
from voice.events import AgentAudio, AgentText, TurnMetrics
from voice.pipeline_reply import ACK_GAP_MS, trim_trailing_silence
from voice.tts import pcm_ms

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]


def test_trailing_silence_is_cut_to_the_gap_and_nothing_else_changes():
    tone = (np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes()  # 100 ms of sound
    silence = b"\x00\x00" * 4000  # 250 ms
    out = trim_trailing_silence(silence + tone + silence, 16000, 120)
    assert out[: len(silence) + len(tone)] == silence + tone, "leading silence and sound kept"
    assert pcm_ms(out, 16000) == 250 + 100 + 120
    assert trim_trailing_silence(tone + b"\x00\x00" * 800, 16000, 120) == tone + b"\x00\x00" * 800
    assert trim_trailing_silence(silence, 16000, 120) == silence  # nothing loud: left alone


async def test_the_acknowledgement_is_followed_by_a_short_gap_only(halves):  # noqa: F811
    first, second = halves
    rec = halves_recognizer(split_s=0.0)
    runtime, session, client = await _session(rec)
    try:
        await stream_pcm(session, first + second)
        metrics = await _tail(session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0)
        texts = [e for e in client.of(AgentText) if e.reply_id > 1]
        ack = texts[0]
        assert ack.source == "cached" and not ack.answer and texts[1].answer
        sent = b"".join(
            e.pcm for e in client.of(AgentAudio) if e.reply_id == ack.reply_id and e.clause_index == 0
        )
        cached = runtime.phrases.get(ack.text)
        samples = np.frombuffer(cached, dtype="<i2")
        speech_end_ms = (np.flatnonzero(np.abs(samples.astype(np.int32)) > 328)[-1] + 1) / 16
        # what the caller heard of the acknowledgement: up to its last sound, then at most the gap
        expected = min(pcm_ms(cached, 16000), speech_end_ms + ACK_GAP_MS)
        assert abs(pcm_ms(sent, 16000) - expected) <= 1.0, (ack.text, pcm_ms(sent, 16000), expected)
        assert metrics.response_onset_ms is not None
    finally:
        await session.end("test")
        client.close()
        runtime.close()
