"""Pick and build the reply generator from settings.

``build_generator(settings_like)`` accepts ``LlmSettings``, the pipeline's ``PipelineConfig``
(it reads its ``llm_*`` attributes) or a plain mapping. By default one generator per distinct
settings is shared by the whole process: the model is loaded once and every session streams
from it (each backend serialises or batches sessions itself).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from voice.interfaces import ReplyGenerator

BACKENDS = ("llama_cpp", "vllm", "openai", "none")
# Names the deploy kit uses (deploy/env.example) for the shared-server backend's settings.
_TRIAGE_ALIASES = {"base_url": "TRIAGE_LLM_BASE_URL", "server_model": "TRIAGE_LLM_MODEL"}


@dataclass(frozen=True, slots=True)
class LlmSettings:
    backend: str = "llama_cpp"  # llama_cpp / vllm / openai / none (no model: the rules' text as is)
    # llama.cpp
    gguf_path: str | None = None  # None: the bundled GGUF from voice.provisioning
    n_threads: int = 0  # 0: every core, up to 4 (llama_cpp_backend.default_threads)
    n_ctx: int = 2048
    pool_size: int = 1
    max_waiting: int = 1  # requests that may queue per context before "saturated" (llama_cpp_backend)
    reuse_prefix: bool = True
    # vLLM
    model_dir: str | None = None  # HF-format folder; None: TRIAGE_VLLM_MODEL, else the converted bundled GGUF
    dtype: str = "auto"  # vLLM: bfloat16 where the hardware has it, else float32
    max_model_len: int = 2048
    cpu_kv_cache_gib: int = 1
    gpu_memory_utilization: float = 0.85
    # openai: a shared OpenAI-compatible server (voice.llm.openai_compat); the API key is read
    # from TRIAGE_LLM_API_KEY when the generator is built, never kept in these settings.
    base_url: str | None = None  # e.g. http://gpu-pool:8000/v1 (TRIAGE_LLM_BASE_URL)
    server_model: str | None = None  # served model name (TRIAGE_LLM_MODEL); None: the server's
    request_timeout_s: float = 10.0  # longest silence between two streamed chunks
    max_in_flight: int = 0  # streams open at once from this process before "saturated"; 0: no cap

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LlmSettings:
        """``VOICE_LLM_<FIELD>`` (e.g. VOICE_LLM_BACKEND=vllm, VOICE_LLM_N_THREADS=4); also
        ``TRIAGE_LLM_BASE_URL`` and ``TRIAGE_LLM_MODEL``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("VOICE_LLM_" + f.name.upper())
            if raw is None and f.name in _TRIAGE_ALIASES:
                raw = env.get(_TRIAGE_ALIASES[f.name])
            if raw is not None:
                values[f.name] = _coerce(raw, f.type)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_any(cls, settings_like: Any) -> LlmSettings:
        """From LlmSettings, an object with ``llm_<field>``/``<field>`` attributes, or a mapping;
        fields it does not carry come from the environment, then the defaults."""
        if isinstance(settings_like, cls):
            return settings_like
        base = cls.from_env()
        if settings_like is None:
            return base
        values: dict[str, Any] = {}
        for f in fields(cls):
            for key in ("llm_" + f.name, f.name):
                if isinstance(settings_like, Mapping):
                    found, value = key in settings_like, settings_like.get(key)
                else:
                    found, value = hasattr(settings_like, key), getattr(settings_like, key, None)
                if found and value is not None:
                    values[f.name] = value
                    break
        return replace(base, **values)


def _coerce(raw: str, typ: Any) -> Any:
    t = str(typ)
    if "bool" in t:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if t.startswith("int"):
        return int(raw)
    if t.startswith("float"):
        return float(raw)
    return raw or None


_shared: dict[LlmSettings, ReplyGenerator] = {}
_shared_lock = threading.Lock()


def build_generator(settings_like: Any = None, *, shared: bool = True) -> ReplyGenerator | None:
    """The ``ReplyGenerator`` for ``settings_like.llm_backend`` (default "llama_cpp").

    Returns None for backend "none" (``GuardedReply`` then speaks the required text). Building
    is cheap: the model loads on ``load()``/``warmup()`` or on the first ``stream()`` (in the
    worker thread, never on the event loop).
    """
    settings = LlmSettings.from_any(settings_like)
    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown LLM backend {settings.backend!r}; expected one of {BACKENDS}")
    if settings.backend == "none":
        return None
    if not shared:
        return _build(settings)
    with _shared_lock:
        if settings not in _shared:
            _shared[settings] = _build(settings)
        return _shared[settings]


def _build(s: LlmSettings) -> ReplyGenerator:
    if s.backend == "llama_cpp":
        from voice.llm.llama_cpp_backend import LlamaCppGenerator, LlamaCppOptions

        return LlamaCppGenerator(
            s.gguf_path,
            LlamaCppOptions(
                n_threads=s.n_threads,
                n_ctx=s.n_ctx,
                pool_size=s.pool_size,
                max_waiting=s.max_waiting,
                reuse_prefix=s.reuse_prefix,
            ),
        )
    if s.backend == "openai":
        from voice.llm.openai_compat import OpenAICompatGenerator, OpenAICompatOptions

        if not s.base_url:
            raise ValueError("the openai LLM backend needs TRIAGE_LLM_BASE_URL (e.g. http://host:8000/v1)")
        return OpenAICompatGenerator(
            OpenAICompatOptions(
                base_url=s.base_url,
                model=s.server_model or "",
                api_key=os.environ.get("TRIAGE_LLM_API_KEY") or None,
                read_timeout_s=s.request_timeout_s,
                max_in_flight=s.max_in_flight,
            )
        )
    from voice.llm.vllm_backend import VllmGenerator, VllmOptions

    model_dir = s.model_dir or str(default_vllm_model_dir(s.gguf_path))
    return VllmGenerator(
        model_dir,
        VllmOptions(
            dtype=s.dtype,
            max_model_len=s.max_model_len,
            cpu_kv_cache_gib=s.cpu_kv_cache_gib,
            gpu_memory_utilization=s.gpu_memory_utilization,
        ),
    )


def default_vllm_model_dir(gguf_path: str | None = None) -> Path:
    """TRIAGE_VLLM_MODEL when set (production: e.g. an 8B instruct model), else the HF copy of the
    bundled GGUF that tools/vllm/setup.sh converts into the model cache."""
    from voice.llm.convert_gguf import default_out_dir
    from voice.provisioning import ModelSettings, llm_gguf_path, vllm_model_dir

    models = ModelSettings.from_env()
    if models.vllm_model:
        return vllm_model_dir(models)
    return default_out_dir(gguf_path or llm_gguf_path(models))
