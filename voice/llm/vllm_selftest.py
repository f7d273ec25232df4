"""Exercise the real ``VllmGenerator`` and print one JSON report (run inside .venv-vllm).

    .venv-vllm/bin/python -m voice.llm.vllm_selftest --model DIR

tests/voice/test_llm_vllm.py runs this in a subprocess (vLLM lives in its own virtualenv, see
tools/vllm/setup.sh) and asserts on the report; it is also the CPU benchmark for vLLM.
Nothing here decides pass or fail: it only measures and records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from voice.interfaces import ChatMessage
from voice.llm.prompts import build_reply_messages
from voice.llm.vllm_backend import VllmGenerator, VllmOptions

REPLY_REQUIRED = "How long have you had the chest pain?"
REPLY_SAID = "I've had this pressure in my chest since this morning."
LONG_PROMPT = [ChatMessage("user", "Count from 1 to 200, separated by commas.")]


async def _reply(gen: VllmGenerator, required: str, said: str) -> dict[str, Any]:
    stream = gen.stream(build_reply_messages(required, said), max_tokens=48, temperature=0.0)
    pieces = [p async for p in stream]
    stats = await stream.wait_closed()
    return {
        "pieces": len(pieces),
        "text": "".join(pieces),
        "ttft_ms": stats.ttft_ms,
        "tokens": stats.completion_tokens,
        "tok_per_s": stats.tokens_per_s,
        "prompt_tokens": stats.prompt_tokens,
        "cached_tokens": stats.cached_tokens,
        "finish_reason": stats.finish_reason,
    }


async def _cancel(gen: VllmGenerator, after: int) -> dict[str, Any]:
    stream = gen.stream(LONG_PROMPT, max_tokens=200, temperature=0.0)
    received = 0
    after_cancel = 0
    t_cancel = None
    async for _ in stream:
        if t_cancel is not None:
            after_cancel += 1  # must stay 0: the iterator ends at cancel()
            continue
        received += 1
        if received == after:
            t_cancel = time.monotonic()
            stream.cancel()
    stats = await stream.wait_closed()
    return {
        "received_before_cancel": received,
        "received_after_cancel": after_cancel,
        "worker_tokens_after_cancel": stats.tokens_after_cancel,
        "completion_tokens": stats.completion_tokens,
        "stop_ms": (stats.finished - t_cancel) * 1000 if t_cancel and stats.finished else None,
        "finish_reason": stats.finish_reason,
        "max_tokens": 200,
    }


async def _concurrent(gen: VllmGenerator) -> list[dict[str, Any]]:
    return list(
        await asyncio.gather(
            _reply(gen, "Do you have a fever?", "My throat hurts and I feel hot."),
            _reply(gen, "Where exactly is the pain?", "My stomach has been hurting all day."),
        )
    )


async def _guarded(gen: VllmGenerator) -> dict[str, Any]:
    from voice.llm.guardrail import GuardedReply, GuardrailConfig

    class _Prompt:  # the shape of clinical_rules' Prompt
        kind, text, fixed, rule_ids = "question", REPLY_REQUIRED, False, ()

    # CPU vLLM is slower than llama.cpp: budgets sized for it, not for production. The
    # paraphrase path (required_verbatim off) makes the model stream the whole required text
    # through the guardrail's verification, the stronger test of the backend's streaming.
    config = GuardrailConfig(
        first_clause_deadline_ms=5000, total_deadline_ms=15000, temperature=0.0, required_verbatim=False
    )
    reply = GuardedReply(_Prompt(), REPLY_SAID, gen, config=config, stats=None)
    clauses = await reply.collect()
    return {
        "clauses": [[c.text, c.source, c.role] for c in clauses],
        "fallback_used": reply.fallback_used,
        "fallback_reason": reply.fallback_reason,
        "ttft_ms": reply.ttft_ms,
        "first_clause_ms": reply.first_clause_ms,
    }


async def run(model_dir: str, options: VllmOptions) -> dict[str, Any]:
    gen = VllmGenerator(model_dir, options)
    t0 = time.monotonic()
    await asyncio.to_thread(gen.start)
    report: dict[str, Any] = {"start_s": time.monotonic() - t0, "model": model_dir}
    try:
        report["first"] = await _reply(gen, REPLY_REQUIRED, REPLY_SAID)
        report["second"] = await _reply(
            gen, "Is it worse when you breathe in?", "It's a sharp pain on the left."
        )
        report["cancel"] = await _cancel(gen, after=5)
        report["concurrent"] = await _concurrent(gen)
        report["guarded"] = await _guarded(gen)
    finally:
        await asyncio.to_thread(gen.close)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voice.llm.vllm_selftest")
    parser.add_argument("--model", required=True, help="HF-format model folder")
    parser.add_argument("--kv-cache-gib", type=int, default=1)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.model, VllmOptions(cpu_kv_cache_gib=args.kv_cache_gib)))
    sys.stdout.write("SELFTEST-JSON " + json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
