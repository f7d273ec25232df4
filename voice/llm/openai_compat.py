"""Reply generation on a shared OpenAI-compatible server (vLLM's ``vllm serve``, llama.cpp's
server, llama-cpp-python's server, ...), streamed over HTTP (server-sent events).

When: a GPU pool serves many web nodes. One inference server batches every node's calls
(vLLM: continuous batching), so no web node holds model weights and web nodes scale on CPU.
docs/llm.md ("In-process or shared") compares it with the in-process backends.

Everything runs on the event loop that reads the stream (httpx's asyncio client): no worker
thread, nothing blocks the loop. ``cancel()`` cancels the request task, which closes the HTTP
response at once; the server sees the client go and stops generating (vLLM aborts the request;
llama-cpp-python's server checks for a disconnect after every chunk). The reader's iterator
ends at ``cancel()`` (``ThreadedTokenStream`` semantics), so nothing after it is spoken.

Failures (refused connection, timeout, HTTP error status, a server that dies mid-stream, an
unreadable chunk) end the stream with ``LlmServerError``; ``GuardedReply`` then speaks the
rules' words (fallback reason ``llm_error``) and ``errors`` counts the kind here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from voice.interfaces import ChatMessage
from voice.llm.prompts import build_reply_messages
from voice.llm.stream import ThreadedTokenStream

log = logging.getLogger(__name__)


class LlmServerError(RuntimeError):
    """The inference server could not produce the reply; ``kind`` says why (for counting)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class OpenAICompatOptions:
    base_url: str = "http://127.0.0.1:8001/v1"  # up to and including /v1
    model: str = ""  # the served model's name ("" lets a single-model server pick its own)
    api_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0  # longest silence between two chunks before giving up
    # Streams open at once from this process; at the limit ``saturated`` is True and the
    # guardrail speaks the rules' words at once instead of queueing. 0: no limit here.
    max_in_flight: int = 0


class OpenAICompatGenerator:
    """``ReplyGenerator`` over HTTP. Safe to share between sessions and event loops."""

    name = "openai"

    def __init__(self, options: OpenAICompatOptions | None = None) -> None:
        self.options = options or OpenAICompatOptions()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._in_flight = 0
        self.errors: Counter[str] = Counter()  # connect / timeout / http_<status> / disconnect / bad_chunk
        self.served_model: str | None = None  # what /models reported on load()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.options.base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        key = self.options.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _timeout(self) -> httpx.Timeout:
        o = self.options
        return httpx.Timeout(o.read_timeout_s, connect=o.connect_timeout_s)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def saturated(self) -> bool:
        limit = self.options.max_in_flight
        return limit > 0 and self._in_flight >= limit

    def load(self) -> None:
        """Blocking: check the server answers ``GET /models`` (start-up and readiness)."""
        try:
            with httpx.Client(timeout=self._timeout(), headers=self._headers()) as client:
                resp = client.get(self.url + "/models")
        except httpx.HTTPError as exc:
            raise LlmServerError(
                "connect", f"LLM server {self.url} unreachable: {type(exc).__name__}"
            ) from exc
        if resp.status_code != 200:
            raise LlmServerError(
                f"http_{resp.status_code}", f"LLM server {self.url}/models answered {resp.status_code}"
            )
        models = [m.get("id") for m in resp.json().get("data", []) if isinstance(m, dict)]
        self.served_model = self.options.model or (models[0] if models else None)

    def warmup(self) -> None:
        """Blocking: check the server, then send the fixed prompt prefix once (fills its prefix
        cache). Never raises: a server that is down at start-up must not stop the web node from
        taking calls; every reply then speaks the rules' words until the server is back."""
        try:
            self.load()
            body = self._body(build_reply_messages("Thank you.", ""), max_tokens=1, temperature=0.0)
            body["stream"] = False
            with httpx.Client(timeout=self._timeout(), headers=self._headers()) as client:
                client.post(self.url + "/chat/completions", json=body).raise_for_status()
        except (LlmServerError, httpx.HTTPError) as exc:
            kind = exc.kind if isinstance(exc, LlmServerError) else "warmup"
            self.errors[kind] += 1
            log.warning("LLM server not ready at start-up (%s): replies fall back until it is", kind)

    async def aclose(self) -> None:
        """Close this loop's connection pool (other loops' clients go with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            # One pool per event loop: an httpx client must not be shared across loops.
            client = httpx.AsyncClient(timeout=self._timeout(), headers=self._headers())
            self._clients[loop] = client
        return client

    # -- ReplyGenerator --------------------------------------------------------------------

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 64, temperature: float = 0.2
    ) -> ThreadedTokenStream:
        """Start the request now (a task on this loop); read it with ``async for``."""
        stream = ThreadedTokenStream()
        body = self._body(messages, max_tokens=max_tokens, temperature=temperature)
        task = asyncio.ensure_future(self._run(stream, body))
        stream.on_cancel.append(task.cancel)
        # Cancelled before its first step, the task never enters _run: end the stream here.
        task.add_done_callback(lambda _: stream.stats.finished is None and stream.finish("cancelled"))
        return stream

    def _body(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if self.options.model or self.served_model:
            body["model"] = self.options.model or self.served_model
        return body

    async def _run(self, stream: ThreadedTokenStream, body: dict[str, Any]) -> None:
        reason, error = "stop", None
        with self._lock:
            self._in_flight += 1
        try:
            async with self._client().stream("POST", self.url + "/chat/completions", json=body) as resp:
                stream.stats.started = time.monotonic()
                if resp.status_code != 200:
                    raise LlmServerError(
                        f"http_{resp.status_code}", f"LLM server answered {resp.status_code}"
                    )
                reason = await self._read(stream, resp)
        except asyncio.CancelledError:
            reason = "cancelled"  # our own cancel(): closing the response told the server
        except LlmServerError as exc:
            reason, error = "error", exc
        except httpx.TimeoutException as exc:
            reason, error = "error", LlmServerError("timeout", f"LLM server timed out ({type(exc).__name__})")
        except httpx.ConnectError as exc:
            reason, error = "error", LlmServerError("connect", f"LLM server unreachable: {exc}")
        except httpx.TransportError as exc:  # RemoteProtocolError, ReadError: the server went away
            reason, error = "error", LlmServerError("disconnect", f"LLM stream broke: {type(exc).__name__}")
        finally:
            with self._lock:
                self._in_flight -= 1
            if isinstance(error, LlmServerError):
                self.errors[error.kind] += 1
                log.warning("LLM server request failed: %s", error.kind)
            stream.finish(reason, error)

    async def _read(self, stream: ThreadedTokenStream, resp: httpx.Response) -> str:
        reason = "stop"
        finished = False
        async for data in sse_data(resp.aiter_lines()):
            if data == "[DONE]":
                finished = True
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError as exc:
                raise LlmServerError("bad_chunk", "LLM server sent a chunk that is not JSON") from exc
            if not isinstance(chunk, dict):
                raise LlmServerError("bad_chunk", "LLM server sent a chunk that is not an object")
            if "error" in chunk:
                raise LlmServerError("server_error", "LLM server reported an error mid-stream")
            if usage := chunk.get("usage"):
                stream.stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
                details = usage.get("prompt_tokens_details") or {}
                stream.stats.cached_tokens = int(details.get("cached_tokens") or 0)
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    stream.stats.completion_tokens += 1  # one chunk per token on vLLM and llama.cpp
                    if not stream.push(piece):
                        return "cancelled"
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
                    finished = True
        if not finished:  # the body ended without [DONE] or a finish_reason: cut off
            raise LlmServerError("disconnect", "LLM stream ended before the reply was complete")
        return reason

    def info(self) -> dict[str, Any]:
        o = self.options
        return {
            "backend": self.name,
            "base_url": o.base_url,
            "model": o.model or self.served_model,
            "max_in_flight": o.max_in_flight,
            "errors": dict(self.errors),
        }


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data:`` payloads of a server-sent-event stream (multi-line data joined by newlines);
    comments (``: ping``) and other fields are skipped."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
