"""LlamaCppGenerator on the real bundled Qwen2.5 GGUF (CPU): streaming, cancel, sharing, prefix cache.

Synchronisation is by events only: ``wait_closed()`` is set by the worker thread when it stops.
Timing assertions are deliberately loose (the CPU is shared); the numbers are recorded with
``record_property`` and reported by ``evals.voice.llm_bench``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from voice.interfaces import ChatMessage
from voice.llm.llama_cpp_backend import LlamaCppGenerator, LlamaCppOptions
from voice.llm.prompts import build_reply_messages

pytestmark = pytest.mark.models

LONG = [ChatMessage("user", "Count from 1 to 200, separated by commas.")]


@pytest.fixture(scope="module")
def gen():
    g = LlamaCppGenerator(options=LlamaCppOptions())
    g.load()
    yield g
    g.close()


async def test_streams_tokens_for_a_real_prompt(gen):
    stream = gen.stream(
        build_reply_messages("Do you have a fever?", "My throat hurts and I feel hot."),
        max_tokens=40,
        temperature=0.0,
    )
    pieces = [p async for p in stream]
    stats = await stream.wait_closed()
    text = "".join(pieces)
    assert len(pieces) >= 3, pieces  # streamed piece by piece, not one blob
    assert "fever" in text.lower(), text
    assert stats.finish_reason in ("stop", "length")
    assert 0 < stats.completion_tokens <= 40
    assert stats.ttft_ms is not None and stats.ttft_ms > 0


async def test_cancel_stops_generation_within_one_token(gen, record_property):
    stream = gen.stream(LONG, max_tokens=200, temperature=0.0)
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            t_cancel = time.monotonic()
            stream.cancel()
        # after cancel() the iterator must end: no further piece reaches the reader
        assert received <= 5
    stats = await stream.wait_closed()  # set by the worker thread when it has stopped
    stop_ms = (stats.finished - t_cancel) * 1000
    record_property("cancel_stop_ms", round(stop_ms, 1))
    assert stats.finish_reason == "cancelled"
    assert stats.tokens_after_cancel <= 1  # at most the token that was being computed
    assert stats.completion_tokens <= received + 1 < 200
    assert stop_ms < 2000  # one token is ~15-50 ms here; loose for a busy machine


async def test_cancel_while_queued_never_runs(gen):
    first = gen.stream(LONG, max_tokens=30, temperature=0.0)
    queued = gen.stream(LONG, max_tokens=30, temperature=0.0)  # waits behind `first` (one context)
    queued.cancel()
    assert [p async for p in queued] == []
    stats = await queued.wait_closed()
    assert stats.started is None and stats.completion_tokens == 0
    assert await first.text()


async def test_two_sessions_share_one_model_fairly(gen):
    # session A asks twice, session B once in between: served A1, B1, A2 (arrival order),
    # one at a time on the single context, and all complete.
    a1 = gen.stream(
        build_reply_messages("Where is the pain?", "My stomach hurts."), max_tokens=24, temperature=0.0
    )
    b1 = gen.stream(
        build_reply_messages("Do you have a fever?", "I feel hot."), max_tokens=24, temperature=0.0
    )
    a2 = gen.stream(
        build_reply_messages("When did it start?", "Around noon."), max_tokens=24, temperature=0.0
    )
    texts = await asyncio.gather(a1.text(), b1.text(), a2.text())
    stats = [await s.wait_closed() for s in (a1, b1, a2)]
    assert all(texts) and all(s.finish_reason in ("stop", "length") for s in stats)
    assert stats[0].started <= stats[1].started <= stats[2].started
    # serialised: each starts only after the previous one finished (contexts are not thread-safe)
    assert stats[1].started >= stats[0].finished and stats[2].started >= stats[1].finished


async def test_prefix_cache_lowers_time_to_first_token(gen, record_property):
    gen.warmup()  # fixed prefix evaluated once
    warm = gen.stream(
        build_reply_messages("Is it worse at night?", "It itches a lot."), max_tokens=4, temperature=0.0
    )
    await warm.text()
    warm_stats = await warm.wait_closed()

    cold_gen = LlamaCppGenerator(gen.model_path, LlamaCppOptions(reuse_prefix=False))
    try:
        await asyncio.to_thread(cold_gen.load)
        cold = cold_gen.stream(
            build_reply_messages("Is it worse at night?", "It itches a lot."), max_tokens=4, temperature=0.0
        )
        await cold.text()
        cold_stats = await cold.wait_closed()
    finally:
        cold_gen.close()

    record_property("ttft_warm_ms", round(warm_stats.ttft_ms, 1))
    record_property("ttft_cold_ms", round(cold_stats.ttft_ms, 1))
    assert cold_stats.cached_tokens == 0
    # the whole fixed prefix (system + few-shot) was reused; only the last turn was evaluated
    assert warm_stats.cached_tokens >= 0.8 * warm_stats.prompt_tokens
    assert warm_stats.ttft_ms < cold_stats.ttft_ms


async def test_saturated_once_a_request_already_waits_for_every_context(gen):
    assert gen.options.pool_size == 1 and gen.options.max_waiting == 1
    assert not gen.saturated
    stream = gen.stream(LONG, max_tokens=200, temperature=0.0)
    async for _ in stream:
        # the one context is in use: one more request may wait for it (a short acknowledgement
        # fits the guardrail's budget), a third would queue behind two replies
        assert not gen.saturated and gen.in_flight == 1
        waiting = gen.stream(LONG, max_tokens=4, temperature=0.0)
        assert gen.saturated and gen.in_flight == 2
        waiting.cancel()  # never started: leaves the queue at once
        await waiting.wait_closed()
        stream.cancel()
    await stream.wait_closed()
    for _ in range(100):  # the executor's done-callback runs just after the stream closes
        if gen.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert not gen.saturated and gen.in_flight == 0
