"""Reply generation with llama-cpp-python on the bundled Qwen2.5 GGUF (CPU).

Sharing: one ``LlamaCppGenerator`` serves every session in the process. A llama.cpp context is
not thread-safe, so generations run on a small executor whose workers each own one context
(``pool_size``, default 1; the weights are mmap-ed, so extra contexts cost only their KV cache).
Requests are served in arrival order (the executor's FIFO queue); ``max_waiting`` requests per
context may wait before ``saturated`` tells the guardrail not to queue (issue 12: with no
waiting allowed, 75% of replies fell back under 4 callers). A session has at most one
generation in flight (a new turn or a barge-in cancels the old one), so FIFO is also
round-robin between sessions: nobody waits behind more than one generation per other session.
A request cancelled while queued never touches the model.

Prefix cache: every prompt starts with the same system prompt + few-shot turns
(``voice.llm.prompts``). llama-cpp-python keeps the last prompt's KV entries and re-evaluates
only after the longest common token prefix, so once warm only the variable tail is evaluated,
for every turn and every session on that context.

Streaming: the worker thread pushes each decoded piece into a ``ThreadedTokenStream``
(``loop.call_soon_threadsafe``) and checks the cancel flag before computing the next token, so
``cancel()`` stops generation within one token.
"""

from __future__ import annotations

import atexit
import codecs
import concurrent.futures
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voice.interfaces import ChatMessage
from voice.llm.prompts import build_reply_messages
from voice.llm.stream import ThreadedTokenStream

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Every core, up to 4: on a dedicated 2-core box (make bench, 2026-11-24) 2 threads gave a
    warm TTFT of 162 ms and 39-48 tok/s against 292 ms and 32 tok/s for 1 thread, and the answer
    onset follows the model's acknowledgement. ASR and TTS mostly run when the model does not
    (the patient has stopped; the answer clause is cached), so sharing the cores costs little.

    On a box shared with other jobs set ``VOICE_LLM_N_THREADS=1``: llama.cpp's threads meet at
    a barrier after every layer, so when other work takes a core the whole step waits for the
    descheduled thread (measured at load average 7-10: 2 threads 0.4-3.4 tok/s, 1 thread 8-14).
    """
    return max(1, min(4, os.cpu_count() or 2))


@dataclass(frozen=True, slots=True)
class LlamaCppOptions:
    n_threads: int = 0  # 0: default_threads()
    n_ctx: int = 2048
    n_batch: int = 512
    pool_size: int = 1  # llama.cpp contexts; >1 only helps with more cores than one context uses
    # Requests that may wait per context before the generator reports ``saturated`` (and the
    # guardrail speaks the rules' words at once). A reply here is one short acknowledgement
    # (~0.2-0.3 s warm), so one waiting request still gets its first clause inside the
    # guardrail's first-clause deadline; the deadline stays the bound either way.
    max_waiting: int = 1
    reuse_prefix: bool = True  # False: drop the KV cache before each request (for measurement)
    seed: int = 1234
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05

    @property
    def threads(self) -> int:
        return self.n_threads if self.n_threads > 0 else default_threads()


class _Context:
    """One llama.cpp context (model + KV cache) and its chat template. Used by one thread at a time."""

    def __init__(self, model_path: str, opts: LlamaCppOptions) -> None:
        import llama_cpp  # heavy native import: only when a model is loaded
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=model_path,
            n_ctx=opts.n_ctx,
            n_batch=opts.n_batch,
            n_threads=opts.threads,
            n_threads_batch=opts.threads,
            seed=opts.seed,
            use_mmap=True,
            verbose=False,
        )
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError(f"{model_path} has no chat template")
        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "replace")
        bos_id = self.llm.token_bos()
        bos = self.llm.detokenize([bos_id], special=True).decode("utf-8", "replace") if bos_id >= 0 else ""
        self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def tokens_for(self, messages: Sequence[ChatMessage]) -> list[int]:
        prompt = self.formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading prompt tokens already sit in this context's KV cache."""
        n = 0
        for a, b in zip(self.llm.input_ids[: self.llm.n_tokens], tokens, strict=False):
            if a != b:
                break
            n += 1
        return n

    def is_end(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))


# Every generator, so the models are freed while the interpreter is still whole: llama-cpp-python's
# own finaliser runs during interpreter teardown, finds its module globals gone and aborts the
# process (exit 134), which would fail a test run that passed.
_live_generators: weakref.WeakSet[LlamaCppGenerator] = weakref.WeakSet()


@atexit.register
def _free_models_at_exit() -> None:
    for generator in list(_live_generators):
        generator._executor.shutdown(wait=False, cancel_futures=True)
        while not generator._contexts.empty():
            try:
                generator._contexts.get_nowait().llm.close()
            except Exception:  # exiting anyway; never mask the real exit status
                log.debug("closing a llama.cpp context at exit failed", exc_info=True)


class LlamaCppGenerator:
    """``ReplyGenerator`` on llama.cpp. Thread-safe; share one instance between sessions."""

    name = "llama_cpp"

    def __init__(self, model_path: str | Path | None = None, options: LlamaCppOptions | None = None) -> None:
        self._model_path = str(model_path) if model_path is not None else None
        self.options = options or LlamaCppOptions()
        self._contexts: queue.SimpleQueue[_Context] = queue.SimpleQueue()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, self.options.pool_size), thread_name_prefix="llm-llama"
        )
        self._load_lock = threading.Lock()
        self._in_flight = 0  # requests submitted and not finished (running or queued)
        self._count_lock = threading.Lock()
        self._loaded = False
        self.load_s: float | None = None
        _live_generators.add(self)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def model_path(self) -> str:
        if self._model_path is None:
            from voice.provisioning import ModelSettings, llm_gguf_path

            self._model_path = str(llm_gguf_path(ModelSettings.from_env()))
        return self._model_path

    @property
    def saturated(self) -> bool:
        """Every context is generating and ``max_waiting`` requests per context already wait:
        a new request would queue behind more than one reply. The guardrail then speaks the
        rules' words at once instead of waiting out its budget."""
        limit = max(1, self.options.pool_size) * (1 + max(0, self.options.max_waiting))
        return self._loaded and self._in_flight >= limit

    @property
    def in_flight(self) -> int:
        """Requests running or waiting for a context."""
        return self._in_flight

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self._in_flight += delta

    def load(self) -> None:
        """Blocking: load the model (``pool_size`` contexts). Safe to call repeatedly."""
        with self._load_lock:
            if self._loaded:
                return
            t0 = time.monotonic()
            for _ in range(max(1, self.options.pool_size)):
                self._contexts.put(_Context(self.model_path, self.options))
            self._loaded = True
            self.load_s = time.monotonic() - t0
            log.info("llama.cpp model loaded in %.2f s (%d context(s))", self.load_s, self.options.pool_size)

    def warmup(self) -> None:
        """Blocking: load, then evaluate the fixed prompt prefix on every context (fills the KV cache)."""
        self.load()
        messages = build_reply_messages("Thank you.", "")
        held = [self._contexts.get() for _ in range(max(1, self.options.pool_size))]
        try:
            for ctx in held:
                for _ in ctx.llm.generate(ctx.tokens_for(messages), temp=0.0, reset=True):
                    break
        finally:
            for ctx in held:
                self._contexts.put(ctx)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._contexts.empty():
            self._contexts.get().llm.close()

    # -- ReplyGenerator --------------------------------------------------------------------

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 64, temperature: float = 0.2
    ) -> ThreadedTokenStream:
        """Start a generation now; read it with ``async for`` on this event loop."""
        stream = ThreadedTokenStream()
        msgs = list(messages)
        self._count(+1)
        future = self._executor.submit(self._generate, stream, msgs, max_tokens, temperature)
        future.add_done_callback(lambda _f: self._count(-1))  # ran, failed or cancelled while queued

        def drop_if_queued() -> None:
            if future.cancel():  # never started: end the stream ourselves
                stream.finish("cancelled")

        stream.on_cancel.append(drop_if_queued)
        return stream

    # -- worker thread ---------------------------------------------------------------------

    def _generate(
        self, stream: ThreadedTokenStream, messages: list[ChatMessage], max_tokens: int, temperature: float
    ) -> None:
        if stream.cancelled:
            stream.finish("cancelled")
            return
        try:
            self.load()
        except Exception as exc:
            stream.finish("error", exc)
            return
        ctx = self._contexts.get()  # never blocks: one context per executor worker
        reason = "stop"
        error: BaseException | None = None
        try:
            stream.stats.started = time.monotonic()
            opts = self.options
            llm = ctx.llm
            tokens = ctx.tokens_for(messages)
            if not opts.reuse_prefix:
                llm.reset()
            stream.stats.prompt_tokens = len(tokens)
            stream.stats.cached_tokens = ctx.cached_prefix(tokens)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            produced = 0
            for token in llm.generate(
                tokens,
                temp=temperature,
                top_k=opts.top_k,
                top_p=opts.top_p,
                min_p=opts.min_p,
                repeat_penalty=1.0,
                reset=True,
            ):
                # The cancel check sits between tokens: the next token is computed only when
                # this loop asks the generator for it.
                if stream.cancelled:
                    stream.stats.tokens_after_cancel += 1
                    break
                if ctx.is_end(token):
                    break
                produced += 1
                piece = decoder.decode(llm.detokenize([token]))
                if piece and not stream.push(piece):
                    break
                if produced >= max_tokens:
                    reason = "length"
                    break
            stream.stats.completion_tokens = produced
            if (tail := decoder.decode(b"", final=True)) and not stream.cancelled:
                stream.push(tail)
        except Exception as exc:  # reported to the reader, not swallowed
            reason, error = "error", exc
            log.exception("llama.cpp generation failed")
        finally:
            self._contexts.put(ctx)
            stream.finish(reason, error)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self._model_path, **asdict(self.options)}
