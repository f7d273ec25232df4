"""OpenAICompatGenerator against a REAL OpenAI-compatible server on loopback: llama-cpp-python's
server (``python -m llama_cpp.server``) serving the bundled GGUF, started by the fixtures.

Streaming, cancel, a server killed mid-stream (the guardrail speaks the rules' words and counts
the reason) and a server that is not there. Synchronisation is by events (``wait_closed()``) and
the server's own readiness (``GET /v1/models``), never sleeps; no timing assertions.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest

from voice.interfaces import ChatMessage
from voice.llm.factory import LlmSettings, build_generator
from voice.llm.guardrail import GuardedReply, GuardrailConfig, GuardrailStats
from voice.llm.openai_compat import LlmServerError, OpenAICompatGenerator, OpenAICompatOptions, sse_data
from voice.llm.prompts import build_reply_messages

pytestmark = pytest.mark.models

LONG = [ChatMessage("user", "Count from 1 to 200, separated by commas.")]
START_TIMEOUT_S = 180.0  # model load + FastAPI import on a shared 2-core box
# A cold prompt (~470 tokens, empty KV cache) takes 8-30 s to prefill on 1 thread of a shared
# 2-core box before the first chunk; production's default (10 s) is for a GPU server.
READ_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    base_url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def start_server() -> Server:
    from voice.provisioning import ModelSettings, llm_gguf_path

    gguf = llm_gguf_path(ModelSettings.from_env())
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", "1", "--n_ctx", "2048", "--verbose", "false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    server = Server(proc, f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(server.base_url + "/models", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling the server's readiness, not a synchronisation sleep
    server.stop()
    raise RuntimeError("llama_cpp.server did not answer within the start-up timeout")


@pytest.fixture(scope="module")
def server():
    s = start_server()
    yield s
    s.stop()


@pytest.fixture
def gen(server):
    g = OpenAICompatGenerator(OpenAICompatOptions(base_url=server.base_url, read_timeout_s=READ_TIMEOUT_S))
    g.load()
    return g


async def test_streams_tokens_from_a_real_server(gen):
    assert gen.served_model  # load() asked the server what it serves
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
    assert gen.in_flight == 0 and not gen.errors
    await gen.aclose()


async def test_cancel_closes_the_stream_and_the_server_serves_the_next_request(gen, record_property):
    stream = gen.stream(LONG, max_tokens=200, temperature=0.0)
    received = 0
    async for _ in stream:
        received += 1
        if received == 5:
            t_cancel = time.monotonic()
            stream.cancel()
        assert received <= 5  # after cancel() no further piece reaches the reader
    stats = await stream.wait_closed()
    assert stats.cancelled and stats.finish_reason == "cancelled"
    assert stats.tokens_after_cancel == 0 and stats.completion_tokens == 5
    assert gen.in_flight == 0 and not gen.errors  # a cancel is not an error
    record_property("cancel_closed_ms", round((stats.finished - t_cancel) * 1000, 1))
    # llama-cpp-python's server generates one reply at a time: the next one is served only once
    # the cancelled generation has stopped on the server.
    t0 = time.monotonic()
    follow = gen.stream([ChatMessage("user", "Say OK.")], max_tokens=3, temperature=0.0)
    assert "".join([p async for p in follow])
    record_property("next_request_after_cancel_ms", round((time.monotonic() - t0) * 1000, 1))
    await gen.aclose()


async def test_cancel_before_the_request_starts_ends_the_stream(gen):
    stream = gen.stream(LONG, max_tokens=200)
    stream.cancel()  # before the request task's first step
    assert [p async for p in stream] == []
    stats = await stream.wait_closed()
    assert stats.finish_reason == "cancelled" and stats.completion_tokens == 0


class KillServerOnFirstPiece:
    """Test helper (not a fake: it passes the real server's stream through): SIGKILLs the server
    process as soon as the first piece reaches the reader, so the rest of the reply never comes."""

    name = "openai"

    def __init__(self, inner: OpenAICompatGenerator, server: Server) -> None:
        self.inner, self.server = inner, server

    def stream(self, messages, **kwargs):
        inner = self.inner.stream(messages, **kwargs)
        server = self.server

        class Tap:
            def __aiter__(self):
                return self

            async def __anext__(self):
                piece = await anext(inner)
                if server.proc.poll() is None:
                    server.stop()
                return piece

            def cancel(self):
                inner.cancel()

            stats = inner.stats

        return Tap()


async def test_server_killed_mid_stream_raises_and_the_guardrail_speaks_the_rules_words():
    server = start_server()  # its own server: this test kills it
    try:
        gen = OpenAICompatGenerator(
            OpenAICompatOptions(base_url=server.base_url, read_timeout_s=READ_TIMEOUT_S)
        )
        gen.load()
        # 1. Straight on the stream: the reader gets an error naming the kind, never a hang.
        stream = gen.stream(LONG, max_tokens=200, temperature=0.0)
        got = []
        with pytest.raises(LlmServerError) as info:
            async for piece in stream:
                got.append(piece)
                if len(got) == 3:
                    server.stop()
        assert info.value.kind == "disconnect" and 3 <= len(got) < 200
        assert gen.errors["disconnect"] == 1
        await gen.aclose()
    finally:
        server.stop()

    # 2. Through the guardrail: a second server dies after the model's first piece.
    server = start_server()
    try:
        gen = OpenAICompatGenerator(
            OpenAICompatOptions(base_url=server.base_url, read_timeout_s=READ_TIMEOUT_S)
        )
        await asyncio.to_thread(gen.warmup)  # the prompt prefix in the server's cache
        stats = GuardrailStats()
        prompt = _Prompt("question", "Have you had a fever or chills in the last two days?", False, ())
        reply = GuardedReply(
            prompt,
            "My throat hurts.",
            KillServerOnFirstPiece(gen, server),
            # Budgets out of the way and the model's own wording required, so the reply needs
            # many more tokens than the server can send before it dies.
            config=GuardrailConfig(
                first_clause_deadline_ms=300_000, total_deadline_ms=300_000, required_verbatim=False
            ),
            stats=stats,
        )
        clauses = await reply.collect()
        assert server.proc.poll() is not None  # really killed mid-reply
        assert reply.fallback_used and reply.fallback_reason == "llm_error"
        assert " ".join(c.text for c in clauses if c.role == "required") == prompt.text
        assert {c.source for c in clauses if c.role == "required"} == {"fallback"}
        assert stats.snapshot()["fallbacks"] == {"llm_error": 1}
        assert gen.errors["disconnect"] == 1
        await gen.aclose()
    finally:
        server.stop()


@dataclass(frozen=True)
class _Prompt:
    kind: str
    text: str
    fixed: bool
    rule_ids: tuple[str, ...]


async def test_no_server_falls_back_and_counts_connect_errors():
    gen = OpenAICompatGenerator(OpenAICompatOptions(base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(LlmServerError, match="unreachable"):
        gen.load()
    gen.warmup()  # what the runtime calls at start-up: a server that is down must not stop the node
    assert gen.errors["connect"] == 1
    stats = GuardrailStats()
    prompt = _Prompt("question", "Where is the pain?", False, ())
    reply = GuardedReply(prompt, "It hurts.", gen, stats=stats)
    clauses = await reply.collect()
    assert [c.text for c in clauses] == ["Where is the pain?"] and clauses[0].source == "fallback"
    assert reply.fallback_reason == "llm_error" and stats.snapshot()["fallbacks"] == {"llm_error": 1}
    assert gen.errors["connect"] == 2  # warmup and the reply
    await gen.aclose()


def test_factory_builds_the_openai_backend_from_the_deploy_names(monkeypatch):
    monkeypatch.setenv("TRIAGE_LLM_BASE_URL", "http://gpu-pool:8000/v1")
    monkeypatch.setenv("TRIAGE_LLM_MODEL", "llama-3.1-8b-instruct")
    monkeypatch.setenv("TRIAGE_LLM_API_KEY", "k-123")
    monkeypatch.setenv("TRIAGE_LLM_BACKEND", "openai")
    monkeypatch.delenv("VOICE_LLM_BACKEND", raising=False)
    from voice.config import PipelineConfig

    config = PipelineConfig.from_env()
    assert config.llm_backend == "openai"
    gen = build_generator(config, shared=False)
    assert isinstance(gen, OpenAICompatGenerator) and gen.name == "openai"
    assert gen.options.base_url == "http://gpu-pool:8000/v1"
    assert gen.options.model == "llama-3.1-8b-instruct" and gen.options.api_key == "k-123"
    assert "k-123" not in repr(gen.options) and "k-123" not in str(gen.info())
    monkeypatch.delenv("TRIAGE_LLM_BASE_URL")
    with pytest.raises(ValueError, match="TRIAGE_LLM_BASE_URL"):
        build_generator(LlmSettings(backend="openai"), shared=False)


def test_saturated_at_the_in_flight_cap():
    gen = OpenAICompatGenerator(OpenAICompatOptions(max_in_flight=2))
    assert not gen.saturated
    gen._in_flight = 2  # what two open streams leave behind
    assert gen.saturated
    assert not OpenAICompatGenerator(OpenAICompatOptions(max_in_flight=0)).saturated


async def test_sse_parser_joins_data_lines_and_skips_comments():
    async def lines():
        for line in [": ping", 'data: {"a":', "data: 1}", "", "event: x", "data:[DONE]", ""]:
            yield line

    assert [d async for d in sse_data(lines())] == ['{"a":\n1}', "[DONE]"]
