"""Reply generation: LLM backends, clause chunking, prompts and the guardrail.

Imports are lazy so that light users (the chunker, the GGUF converter in the vLLM venv) do not
pull in llama.cpp or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClauseChunker": "voice.llm.chunker",
    "split_clauses": "voice.llm.chunker",
    "ThreadedTokenStream": "voice.llm.stream",
    "StreamStats": "voice.llm.stream",
    "build_reply_messages": "voice.llm.prompts",
    "FIXED_PREFIX": "voice.llm.prompts",
    "GuardedReply": "voice.llm.guardrail",
    "GuardrailConfig": "voice.llm.guardrail",
    "GuardrailStats": "voice.llm.guardrail",
    "GUARDRAIL_STATS": "voice.llm.guardrail",
    "ReplyClause": "voice.llm.guardrail",
    "LlamaCppGenerator": "voice.llm.llama_cpp_backend",
    "LlamaCppOptions": "voice.llm.llama_cpp_backend",
    "VllmGenerator": "voice.llm.vllm_backend",
    "VllmOptions": "voice.llm.vllm_backend",
    "OpenAICompatGenerator": "voice.llm.openai_compat",
    "OpenAICompatOptions": "voice.llm.openai_compat",
    "LlmSettings": "voice.llm.factory",
    "build_generator": "voice.llm.factory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voice.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
