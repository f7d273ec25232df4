"""Streaming TTS with the real Piper voice: per-clause audio, <=100 ms chunks at the
output rate, cached phrases, and cancel in the middle of a clause."""

import asyncio
import functools

import numpy as np
import pytest

from voice.audio import resample_pcm16
from voice.compute import ComputePool
from voice.events import AgentAudio, AgentText
from voice.pipeline_reply import ClauseAudio, ClauseItem, Reply, Timeline
from voice.tts import ClauseSpeaker, PhraseCache, PiperSynthesizer, chunk_pcm, pcm_ms

pytestmark = pytest.mark.models

OUT_RATE = 16000


@functools.cache
def load_voice() -> PiperSynthesizer:
    """The bundled Piper voice, loaded through provisioning like the runtime does."""
    from voice.provisioning import ModelSettings, piper_voice_paths

    return PiperSynthesizer.load(*piper_voice_paths(ModelSettings.from_env()))


LONG = "Please describe where the pain is, how strong it feels, and whether it spreads anywhere else."


@pytest.fixture(scope="module")
def synth():
    return load_voice()


@pytest.fixture
def compute():
    pool = ComputePool(1)
    yield pool.session("tts-test")
    pool.close()


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def test_piper_yields_one_chunk_per_sentence_and_resamples(synth):
    assert synth.sample_rate == 22050
    chunks = list(synth.synthesize("The first sentence. And a second one."))
    assert len(chunks) == 2 and all(len(c) > 0 and len(c) % 2 == 0 for c in chunks)
    native_ms = sum(pcm_ms(c, 22050) for c in chunks)
    # Piper's durations are stochastic, so compare the resampler on the same audio...
    assert pcm_ms(resample_pcm16(b"".join(chunks), 22050, OUT_RATE), OUT_RATE) == pytest.approx(
        native_ms, abs=1.0
    )
    # ...and a fresh synthesis at the output rate only roughly.
    pcm16k = synth.synthesize_pcm("The first sentence. And a second one.", OUT_RATE)
    assert pcm_ms(pcm16k, OUT_RATE) == pytest.approx(native_ms, rel=0.2)
    assert _rms(pcm16k) > 300  # speech, not silence


def test_chunks_are_at_most_100_ms():
    pcm = b"\x01\x00" * 16000  # 1 s
    chunks = chunk_pcm(pcm, 16000, 100)
    assert len(chunks) == 10 and {len(c) for c in chunks} == {3200}
    assert b"".join(chunk_pcm(pcm[:-2], 16000, 100)) == pcm[:-2]


async def test_cached_phrase_is_instant_and_identical(synth, compute):
    cache = PhraseCache(synth, OUT_RATE)
    assert cache.warm(["Okay.", "I see.", " Okay.  "]) == 2  # whitespace-normalized duplicates are skipped
    speaker = ClauseSpeaker(synth, cache, compute, out_rate=OUT_RATE)
    pcm, cached = await speaker.render("Okay.")
    assert cached and pcm == cache.get("Okay.")
    fresh, cached2 = await speaker.render("Tell me more.")
    assert not cached2 and pcm_ms(fresh, OUT_RATE) > 300


async def test_stream_stops_mid_clause_on_cancel(synth, compute):
    speaker = ClauseSpeaker(synth, PhraseCache(synth, OUT_RATE), compute, out_rate=OUT_RATE, chunk_ms=100)
    whole, _ = await speaker.render(LONG)
    total = len(chunk_pcm(whole, OUT_RATE, 100))
    assert total > 20  # a multi-second clause
    got = []
    async for chunk in speaker.stream(LONG, cancelled=lambda: len(got) >= 3):
        assert pcm_ms(chunk.pcm, OUT_RATE) <= 100.0
        got.append(chunk)
    assert len(got) == 3 and got[0].first and not got[1].first


async def test_reply_streams_clause_by_clause_and_cancel_stops_at_once(synth, compute):
    """Two clauses through a Reply; cancel after the 4th audio chunk of the second clause:
    nothing further is produced and the timeline holds only what was sent."""
    speaker = ClauseSpeaker(synth, PhraseCache(synth, OUT_RATE), compute, out_rate=OUT_RATE)
    events = []
    stop_after = asyncio.Event()

    def put(ev):
        events.append(ev)
        audio2 = [e for e in events if isinstance(e, AgentAudio) and e.clause_index == 1]
        if len(audio2) == 4:
            reply.cancel()
            stop_after.set()

    async def source():
        yield ClauseItem("I understand.", "llm", "ack", False)
        yield ClauseItem(LONG, "llm", "required", True)
        yield ClauseItem("This clause must never be heard.", "llm", "required", False)

    loop = asyncio.get_running_loop()
    reply = Reply(
        turn_id=1, kind="question", required_text=LONG, source=source(), speaker=speaker,
        put=put, clock=loop.time,
    )  # fmt: skip
    reply.start()
    reply.open(7)
    await stop_after.wait()
    assert await reply.finished is False
    texts = [e for e in events if isinstance(e, AgentText)]
    assert [t.text for t in texts] == ["I understand.", LONG]
    assert all(e.reply_id == 7 and e.sample_rate == OUT_RATE for e in events if isinstance(e, AgentAudio))
    n_audio = len([e for e in events if isinstance(e, AgentAudio)])
    await asyncio.sleep(0)  # one more loop turn: still nothing new after the cancel
    assert len([e for e in events if isinstance(e, AgentAudio)]) == n_audio
    clause2 = reply.timeline.clauses[1]
    assert clause2.dur_ms == pytest.approx(400.0, abs=1.0)  # exactly the 4 chunks sent


async def test_speculative_reply_renders_but_sends_nothing_until_opened(synth, compute):
    speaker = ClauseSpeaker(synth, PhraseCache(synth, OUT_RATE), compute, out_rate=OUT_RATE)
    events = []
    rendered = asyncio.Event()

    async def source():
        yield ClauseItem("Does it hurt when you breathe in?", "llm", "required", True)

    reply = Reply(
        turn_id=2, kind="question", required_text="", source=source(), speaker=speaker,
        put=events.append, clock=asyncio.get_running_loop().time, speculative=True,
        on_render=lambda *a: rendered.set(),
    )  # fmt: skip
    reply.start()
    await rendered.wait()
    assert events == []  # rendered behind the gate, nothing sent
    reply.cancel()
    assert await reply.finished is False and events == []


def test_timeline_keeps_only_played_words():
    tl = Timeline(
        [
            ClauseAudio(0, "Okay.", "cached", 0.0, 500.0),
            ClauseAudio(1, "How long has it hurt today?", "llm", 500.0, 1000.0),
        ]
    )
    assert tl.text_played(0) == ""
    assert tl.text_played(499) == ""
    assert tl.text_played(500) == "Okay."
    assert tl.text_played(1000) == "Okay. How long has"  # half of six words
    assert tl.text_played(5000) == "Okay. How long has it hurt today?"
