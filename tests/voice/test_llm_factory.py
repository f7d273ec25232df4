"""Backend selection and prompt shape (no model is loaded here)."""

from __future__ import annotations

import pytest

from voice.config import PipelineConfig
from voice.llm.factory import LlmSettings, build_generator
from voice.llm.llama_cpp_backend import LlamaCppGenerator
from voice.llm.prompts import FIXED_PREFIX, build_reply_messages, is_fixed_prefix
from voice.llm.vllm_backend import VllmGenerator, resolve_dtype


def test_default_backend_is_llama_cpp_and_shared():
    a = build_generator({"llm_backend": "llama_cpp", "llm_gguf_path": "/models/x.gguf"})
    b = build_generator(LlmSettings(backend="llama_cpp", gguf_path="/models/x.gguf"))
    assert isinstance(a, LlamaCppGenerator) and a.name == "llama_cpp"
    assert a is b  # one loaded model per settings, shared by all sessions
    assert build_generator({"llm_gguf_path": "/models/x.gguf"}, shared=False) is not a


def test_pipeline_config_selects_the_backend(monkeypatch):
    monkeypatch.delenv("VOICE_LLM_BACKEND", raising=False)
    assert LlmSettings.from_any(PipelineConfig(llm_backend="vllm")).backend == "vllm"
    assert LlmSettings.from_any(PipelineConfig()).backend == "llama_cpp"
    assert build_generator(PipelineConfig(llm_backend="none")) is None


def test_vllm_backend_is_built_without_starting(tmp_path):
    gen = build_generator({"llm_backend": "vllm", "llm_model_dir": str(tmp_path)}, shared=False)
    assert isinstance(gen, VllmGenerator) and gen.name == "vllm"
    with pytest.raises(FileNotFoundError):  # not an HF folder: refused before any engine work
        gen.start()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown LLM backend"):
        build_generator({"llm_backend": "gpt"})


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("VOICE_LLM_N_THREADS", "3")
    monkeypatch.setenv("VOICE_LLM_REUSE_PREFIX", "0")
    s = LlmSettings.from_env()
    assert s.n_threads == 3 and s.reuse_prefix is False


def test_resolve_dtype_explicit_wins():
    assert resolve_dtype("float16") == "float16"
    assert resolve_dtype("auto") in ("bfloat16", "float32")


def test_prompt_prefix_is_fixed_and_variable_part_last():
    a = build_reply_messages("Do you have a fever?", "I feel hot.")
    b = build_reply_messages("Where is the pain?", "My belly hurts.")
    assert is_fixed_prefix(a) and is_fixed_prefix(b)
    assert a[: len(FIXED_PREFIX)] == b[: len(FIXED_PREFIX)]  # byte-identical: KV cache reuse
    assert len(a) == len(FIXED_PREFIX) + 1 and a[-1].role == "user"
    assert "Do you have a fever?" in a[-1].content and "I feel hot." in a[-1].content
    assert "never naming an illness" in a[0].content
    with pytest.raises(ValueError):
        build_reply_messages("  ")


def test_guardrail_budgets_come_from_the_pipeline_config():
    from voice.llm.guardrail import GuardrailConfig

    cfg = PipelineConfig()
    cfg.budgets_ms["first_clause"] = 650.0
    g = GuardrailConfig.from_pipeline(cfg)
    assert g.first_clause_deadline_ms == 650.0
    assert g.max_tokens == cfg.llm_max_tokens and g.temperature == cfg.llm_temperature
    assert GuardrailConfig.from_pipeline(cfg, total_deadline_ms=900).total_deadline_ms == 900


async def test_vllm_unavailable_falls_back_to_the_required_text(tmp_path):
    """Backend "vllm" where vLLM cannot start (here: not installed in this venv): every stream
    ends with the error and the guardrail speaks the rules' text instead of hanging."""
    import importlib.util
    import os

    from voice.llm.guardrail import GuardedReply, GuardrailConfig, GuardrailStats

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is importable here; this case is about an environment without it")
    before = dict(os.environ)  # the engine thread sets VLLM_* defaults; put them back after
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    gen = VllmGenerator(model)

    class Prompt:
        kind, text, fixed, rule_ids = "question", "Do you have a fever?", False, ()

    try:
        reply = GuardedReply(Prompt(), "I feel hot", gen, config=GuardrailConfig(), stats=GuardrailStats())
        clauses = await reply.collect()
        assert reply.fallback_reason == "llm_error"
        assert [(c.text, c.source) for c in clauses] == [("Do you have a fever?", "fallback")]
        with pytest.raises(RuntimeError, match="failed to start"):
            gen.start()
        # later streams fail at once too
        with pytest.raises(Exception):  # noqa: B017 - whatever vLLM's import error is
            await gen.stream([], max_tokens=4).text()
    finally:
        gen.close()
        os.environ.clear()
        os.environ.update(before)
