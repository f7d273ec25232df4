"""Reply-generation benchmark: ``evals.voice.llm_bench.run() -> dict`` (``make bench`` calls it).

Measures the llama.cpp backend on the bundled model: load time, cold time-to-first-token (empty
KV cache), then a fixed set of turns through the guardrail with production budgets (warm prefix
cache): TTFT p50/p95, tokens/s, first-clause and required-text latency, fallback rate and
reasons. With ``include_vllm`` it also runs the vLLM self-test in .venv-vllm (start-up, TTFT,
tokens/s on CPU).

    .venv/bin/python -m evals.voice.llm_bench [--vllm] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice.interfaces import ChatMessage
from voice.llm.guardrail import GuardedReply, GuardrailConfig, GuardrailStats
from voice.llm.llama_cpp_backend import LlamaCppGenerator, LlamaCppOptions
from voice.llm.prompts import build_reply_messages

# (kind, required text decided by the rules, what the patient just said)
TURNS: tuple[tuple[str, str, str], ...] = (
    ("question", "What is the main problem you're calling about today?", "Hi, I'm not feeling well at all."),
    (
        "question",
        "How long have you had the chest pain?",
        "I've had this pressure in my chest since this morning.",
    ),
    (
        "question",
        "Does the pain spread to your arm, jaw or back?",
        "It's kind of a tight feeling, right in the middle.",
    ),
    ("question", "Do you have a fever?", "My throat hurts and I feel hot."),
    ("question", "On a scale of 0 to 10, how bad is the pain right now?", "It's pretty bad, honestly."),
    ("question", "Are you having any trouble breathing?", "I just feel really tired and weak."),
    ("question", "How old are you?", "It's for me, not for my kid."),
    ("question", "Have you vomited more than twice today?", "My stomach has been upset since last night."),
    ("disposition", "Please contact your doctor's office within 24 hours.", "No, nothing like that."),
    (
        "disposition",
        "You can look after this at home; call back if it gets worse.",
        "No fever, just a runny nose.",
    ),
)


@dataclass
class _Prompt:
    kind: str
    text: str
    fixed: bool = False
    rule_ids: tuple[str, ...] = ()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _llama(gen: LlamaCppGenerator, config: GuardrailConfig) -> dict[str, Any]:
    t0 = time.monotonic()
    await asyncio.to_thread(gen.load)
    load_s = time.monotonic() - t0

    # cold: the first request on a fresh context evaluates the whole prompt
    cold = gen.stream(build_reply_messages(TURNS[0][1], TURNS[0][2]), max_tokens=8, temperature=0.0)
    await cold.text()
    cold_stats = await cold.wait_closed()

    # raw decode speed on a long answer
    speed = gen.stream(
        [ChatMessage("user", "Count from 1 to 60, separated by commas.")], max_tokens=64, temperature=0.0
    )
    await speed.text()
    speed_stats = await speed.wait_closed()

    turns, reasons, tok_s = await _turns(gen, config)
    # Same turns with budgets out of the way: what the model says, whatever the machine's load.
    relaxed = GuardrailConfig(
        first_clause_deadline_ms=60_000,
        total_deadline_ms=120_000,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
    )
    content_turns, content_reasons, _ = await _turns(gen, relaxed)
    ttft = [t["ttft_ms"] for t in turns if t["ttft_ms"] is not None]
    first = [t["first_clause_ms"] for t in turns if t["first_clause_ms"] is not None]
    required_ms = [t["required_ms"] for t in turns if t["required_ms"] is not None]
    return {
        "backend": "llama_cpp",
        "n_threads": gen.options.threads,
        "load_s": load_s,
        "ttft_cold_ms": cold_stats.ttft_ms,
        "ttft_p50_ms": _pct(ttft, 0.5),
        "ttft_p95_ms": _pct(ttft, 0.95),
        "tok_per_s": speed_stats.tokens_per_s,
        "reply_tok_per_s_p50": _pct(tok_s, 0.5),
        "first_clause_p50_ms": _pct(first, 0.5),
        "first_clause_p95_ms": _pct(first, 0.95),
        "required_p50_ms": _pct(required_ms, 0.5),
        "fallback_rate": sum(1 for t in turns if t["fallback"]) / len(turns),
        "fallback_reasons": reasons,
        "content_ttft_p50_ms": _pct([t["ttft_ms"] for t in content_turns if t["ttft_ms"] is not None], 0.5),
        "content_first_clause_p50_ms": _pct(
            [t["first_clause_ms"] for t in content_turns if t["first_clause_ms"] is not None], 0.5
        ),
        "content_required_p50_ms": _pct(
            [t["required_ms"] for t in content_turns if t["required_ms"] is not None], 0.5
        ),
        "content_fallback_rate": sum(1 for t in content_turns if t["fallback"]) / len(content_turns),
        "content_fallback_reasons": content_reasons,
        "budgets_ms": {"first_clause": config.first_clause_deadline_ms, "total": config.total_deadline_ms},
        "turns": turns,
        "content_turns": content_turns,
    }


async def _turns(gen: LlamaCppGenerator, config: GuardrailConfig) -> tuple[list[dict], dict, list[float]]:
    stats = GuardrailStats()
    turns: list[dict[str, Any]] = []
    tok_s: list[float] = []
    for kind, required, said in TURNS:
        reply = GuardedReply(_Prompt(kind, required), said, gen, config=config, stats=stats)
        clauses = await reply.collect()
        stream = reply.token_stream
        stream_stats = await stream.wait_closed() if stream is not None else None
        if stream_stats is not None and stream_stats.tokens_per_s:
            tok_s.append(stream_stats.tokens_per_s)
        turns.append(
            {
                "kind": kind,
                "ttft_ms": reply.ttft_ms,
                "first_clause_ms": reply.first_clause_ms,
                "required_ms": reply.required_ms,
                "cached_tokens": stream_stats.cached_tokens if stream_stats else None,
                "prompt_tokens": stream_stats.prompt_tokens if stream_stats else None,
                "fallback": reply.fallback_reason,
                "sources": [c.source for c in clauses],
                "text": reply.text,
            }
        )
    return turns, dict(stats.snapshot()["fallbacks"]), tok_s


def _vllm(timeout_s: float = 900) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    python = Path(os.environ.get("VLLM_VENV", root / ".venv-vllm")) / "bin" / "python"
    if not python.exists():
        return {"error": "no .venv-vllm: run bash tools/vllm/setup.sh"}
    from voice.llm.factory import default_vllm_model_dir

    model_dir = default_vllm_model_dir()
    proc = subprocess.run(
        [str(python), "-m", "voice.llm.vllm_selftest", "--model", str(model_dir)],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SELFTEST-JSON ")]
    if not lines:
        return {"error": f"self-test failed (exit {proc.returncode})", "stderr": proc.stderr[-2000:]}
    rep = json.loads(lines[-1].removeprefix("SELFTEST-JSON "))
    return {
        "backend": "vllm",
        "start_s": rep["start_s"],
        "ttft_cold_ms": rep["first"]["ttft_ms"],
        "ttft_warm_ms": rep["second"]["ttft_ms"],
        "tok_per_s": rep["first"]["tok_per_s"],
        "cancel": rep["cancel"],
        "guarded": rep["guarded"],
    }


def run(
    *, include_vllm: bool = False, n_threads: int | None = None, config: GuardrailConfig | None = None
) -> dict:
    """Run the benchmark (blocking, ~30 s on 2 cores); returns the numbers and prints a table."""
    threads = n_threads or int(os.environ.get("VOICE_LLM_N_THREADS", "0"))
    gen = LlamaCppGenerator(options=LlamaCppOptions(n_threads=threads))
    try:
        result: dict[str, Any] = {"llama_cpp": asyncio.run(_llama(gen, config or GuardrailConfig()))}
    finally:
        gen.close()
    if include_vllm:
        result["vllm"] = _vllm()
    print(format_table(result), file=sys.stderr)
    return result


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}" if value < 100 else f"{value:,.0f}{unit}"
    return f"{value}{unit}"


def format_table(result: dict[str, Any]) -> str:
    ll = result["llama_cpp"]
    rows = [
        ("llama.cpp load", _fmt(ll["load_s"], " s")),
        ("TTFT cold (empty KV cache)", _fmt(ll["ttft_cold_ms"], " ms")),
        ("TTFT warm p50 / p95", f"{_fmt(ll['ttft_p50_ms'], ' ms')} / {_fmt(ll['ttft_p95_ms'], ' ms')}"),
        ("decode speed", _fmt(ll["tok_per_s"], " tok/s")),
        (
            "first clause p50 / p95",
            f"{_fmt(ll['first_clause_p50_ms'], ' ms')} / {_fmt(ll['first_clause_p95_ms'], ' ms')}",
        ),
        ("required text p50", _fmt(ll["required_p50_ms"], " ms")),
        (
            "unbudgeted: first clause / required p50",
            f"{_fmt(ll['content_first_clause_p50_ms'], ' ms')} / {_fmt(ll['content_required_p50_ms'], ' ms')}",
        ),
        ("fallback rate (budgets)", f"{ll['fallback_rate']:.0%} {ll['fallback_reasons'] or ''}".strip()),
        (
            "fallback rate (content)",
            f"{ll['content_fallback_rate']:.0%} {ll['content_fallback_reasons'] or ''}".strip(),
        ),
    ]
    if (v := result.get("vllm")) is not None:
        if "error" in v:
            rows.append(("vLLM", v["error"]))
        else:
            rows += [
                ("vLLM start-up", _fmt(v["start_s"], " s")),
                (
                    "vLLM TTFT cold / warm",
                    f"{_fmt(v['ttft_cold_ms'], ' ms')} / {_fmt(v['ttft_warm_ms'], ' ms')}",
                ),
                ("vLLM decode speed", _fmt(v["tok_per_s"], " tok/s")),
            ]
    width = max(len(r[0]) for r in rows)
    lines = [f"reply generation ({len(ll['turns'])} turns, {ll['n_threads']} threads)"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.voice.llm_bench")
    parser.add_argument("--vllm", action="store_true", help="also run the vLLM self-test in .venv-vllm")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", help="write the full result here")
    parser.add_argument("--turns", action="store_true", help="print each turn's reply")
    args = parser.parse_args(argv)
    result = run(include_vllm=args.vllm, n_threads=args.threads)
    if args.turns:
        for t in result["llama_cpp"]["turns"] + result["llama_cpp"]["content_turns"]:
            print(
                f"{t['ttft_ms'] or 0:6.0f} {t['first_clause_ms'] or 0:6.0f} {t['fallback'] or 'ok':<22} {t['text']}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
