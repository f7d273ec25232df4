"""Voice pipeline benchmark: ``python -m evals.voice.bench`` (``make bench``).

Real models (tiny.en, Piper, llama.cpp Qwen 0.5B), ``clinical_rules.TriageInterview``, and a
fixed set of patient utterances synthesized with Piper and streamed in real time (20 ms
frames) by a simulated browser client. Measures, in one run:

* one session, speculation on and off (same utterances): response / answer onset p50/p95,
  every stage, and the onset speculation saves;
* N concurrent sessions (default 4): answer onset p95 and event-loop lag p99 (a 10 ms
  ticker task on the same loop);
* barge-in trials (speech onset -> AgentInterrupted) and backchannel trials (false
  interruptions), at the configured barge-in gate and at a fast 150 ms gate for contrast;
* ``evals.voice.endpointing.run()``, ``clinical_rules.bench.run()`` and
  ``evals.voice.llm_bench.run()`` when those modules exist.

Writes bench-results/voice.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentResumed,
    SpeechStarted,
    TurnMetrics,
)
from voice.telemetry import LoopLagMonitor, percentile, summarize

# Opening complaints. Each one is the patient's first turn of a fresh call: the rules answer
# every one of them with a protocol question (not an emergency script), so every reply goes
# through the LLM and the guardrail, the path whose latency matters. (Follow-up answers would
# make the measured path depend on how the rules read them.)
UTTERANCES: tuple[str, ...] = (
    "I have had a headache since this morning.",
    "My throat has been sore for two days.",
    "I twisted my ankle playing football yesterday.",
    "I have a cough and a runny nose.",
    "My lower back hurts when I bend over.",
    "I have had an upset stomach since last night.",
    "My ear has been aching since Sunday.",
    "I cut my finger while cooking.",
)
INTERRUPTIONS: tuple[str, ...] = (
    "Wait, I have a question first.",
    "Sorry, can you say that again please?",
    "No, hold on, that is not why I called.",
    "Excuse me, my daughter is the patient.",
    "Stop, I need to tell you something.",
    "Actually, I think my knee is swollen.",
)
BACKCHANNELS: tuple[str, ...] = ("Uh-huh.", "Okay.", "Mm-hmm.", "Yeah.", "Right.", "I see.", "Mm.", "<cough>")
STAGE_KEYS = ("endpoint", "asr_final", "asr_compute", "llm_first_token", "first_clause", "tts_first_audio")


def synthesize_all(runtime, texts) -> dict[str, bytes]:
    """16 kHz PCM of every text with the runtime's Piper voice (a cough is shaped noise)."""
    out: dict[str, bytes] = {}
    for text in texts:
        if text == "<cough>":
            out[text] = cough()
        else:
            out[text] = runtime.synthesizer.synthesize_pcm(text, 16000)
    return out


def cough(seed: int = 3) -> bytes:
    """A 250 ms burst of band-limited noise with a fast attack: webrtcvad calls it voiced."""
    from voice.audio import float32_to_pcm16

    rng = np.random.default_rng(seed)
    n = 4000
    env = np.minimum(1.0, np.arange(n) / 160.0) * np.exp(-np.arange(n) / 1800.0)
    noise = np.convolve(rng.standard_normal(n), np.ones(6) / 6, mode="same")
    return float32_to_pcm16((noise * env * 0.5).astype(np.float32))


def make_policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


async def _tail_until(session, client, predicate, *, max_s: float = 30.0, seed: int = 0) -> bool:
    """Background noise in real time until an event matching ``predicate`` arrives."""
    seen = [False]

    async def waiter():
        try:
            await client.wait_for(predicate, timeout=max_s)
            seen[0] = True
        except TimeoutError:
            pass

    w = asyncio.ensure_future(waiter())
    i = 0
    while not w.done():
        await stream_pcm(session, comfort_noise(100, seed=seed * 1000 + i), stop=lambda: w.done())
        i += 1
    return seen[0]


async def one_turn(runtime, config, pcm: bytes, *, name: str, seed: int) -> dict[str, Any]:
    """A fresh call: greeting (played instantly by the client), one patient turn, the reply."""
    from voice.pipeline import VoiceSession

    client = SimulatedClient(instant_playback=True)
    session = VoiceSession(runtime, make_policy(), client.emit, config, name=name)
    client.attach(session)
    await session.start()
    await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0, timeout=60)
    await stream_pcm(session, pcm)
    ok = await _tail_until(
        session, client, lambda e: isinstance(e, TurnMetrics) and e.turn_id > 0, max_s=60, seed=seed
    )
    await session.end("bench_done")
    client.close()
    return {
        "metrics": [m for m in client.of(TurnMetrics) if m.turn_id > 0],
        "stats": asdict(session.stats),
        "answered": ok,
    }


async def conversation(runtime, config, speech, texts, *, name: str, start_delay: float = 0.0):
    """``texts`` one after the other, each as the first turn of a new call."""
    await asyncio.sleep(start_delay)
    metrics, stats, unanswered = [], [], 0
    for i, text in enumerate(texts):
        r = await one_turn(runtime, config, speech[text], name=f"{name}-{i}", seed=i)
        metrics += r["metrics"]
        stats.append(r["stats"])
        if not r["answered"]:
            unanswered += 1
            print(f"  [{name}] no answer for {text!r}", file=sys.stderr)
    totals = (
        {k: sum(st[k] for st in stats) for k in stats[0] if isinstance(stats[0][k], int)} if stats else {}
    )
    return {"metrics": metrics, "stats": {**totals, "unanswered": unanswered}}


def _onsets(metrics, key):
    return [getattr(m, key) for m in metrics if getattr(m, key) is not None]


def _stage_table(metrics) -> dict[str, Any]:
    out = {}
    for stage in STAGE_KEYS:
        vals = [m.stages[stage] for m in metrics if stage in m.stages]
        out[stage] = summarize(vals)
    return out


def _summary(metrics) -> dict[str, Any]:
    return {
        "turns": len(metrics),
        "response_onset_ms": summarize(_onsets(metrics, "response_onset_ms")),
        "answer_onset_ms": summarize(_onsets(metrics, "answer_onset_ms")),
        "stages_ms": _stage_table(metrics),
        "fallback_rate": round(sum(m.fallback_used for m in metrics) / len(metrics), 3) if metrics else None,
        "budget_misses": _count(s for m in metrics for s in m.budget_misses),
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


async def overlap_trial(runtime, config, pcm: bytes, *, at_s: float, seed: int) -> dict[str, Any]:
    """Speak ``pcm`` ``at_s`` seconds into the greeting (real-time playback client)."""
    from voice.pipeline import VoiceSession

    client = SimulatedClient(instant_playback=False)
    session = VoiceSession(runtime, make_policy(), client.emit, config, name=f"overlap-{seed}")
    client.attach(session)
    await session.start()
    greeting = await client.wait_for(
        lambda e: isinstance(e, AgentReplyStarted) and e.turn_id == 0, timeout=60
    )
    await client.wait_for(lambda e: isinstance(e, AgentAudio) and e.reply_id == greeting.reply_id, timeout=60)
    await stream_pcm(session, comfort_noise(int(at_s * 1000), seed=seed))
    await stream_pcm(session, pcm)
    # Until the greeting reply is over (interrupted or played out).
    await _tail_until(
        session, client,
        lambda e: isinstance(e, AgentReplyFinished) and e.reply_id == greeting.reply_id,
        max_s=30, seed=seed,
    )  # fmt: skip
    await session.end("bench_done")
    client.close()
    interrupted = next((e for e in client.of(AgentInterrupted) if e.reply_id == greeting.reply_id), None)
    paused = next((e for e in client.of(AgentPaused) if e.reply_id == greeting.reply_id), None)
    resumed = next((e for e in client.of(AgentResumed) if e.reply_id == greeting.reply_id), None)
    onset = next((e for e in client.of(SpeechStarted) if e.turn_id > 0), None)
    out: dict[str, Any] = {
        "interrupted": interrupted is not None,
        "paused": paused is not None,
        "resumed": resumed is not None,
        "speech_detected": onset is not None,
    }
    if onset is not None:
        out["detect_ms"] = round((onset.detected_t - onset.t) * 1000, 1)
        # the stop signal is whichever came first: the hold (AgentPaused) or the cancel
        first_stop = min((e.t for e in (paused, interrupted) if e is not None), default=None)
        if first_stop is not None:
            out["stop_ms"] = round((first_stop - onset.t) * 1000, 1)
    if interrupted is not None and onset is not None:
        out["cancel_ms"] = round((interrupted.t - onset.t) * 1000, 1)
        out["reasons"] = dict(session.stats.barge_in_reasons)
    if resumed is not None:
        out["held_ms"] = resumed.paused_ms
    return out


async def barge_in_suite(runtime, base: PipelineConfig, speech, gates) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for label, overrides in gates:
        cfg = replace(base, **overrides)
        min_ms = cfg.barge_in_min_ms
        stops, cancels, misses, false_hits, reasons = [], [], 0, [], {}
        for i, text in enumerate(INTERRUPTIONS):
            r = await overlap_trial(runtime, cfg, speech[text], at_s=0.8 + 0.1 * i, seed=10 + i)
            if r["interrupted"]:
                stops.append(r["stop_ms"])
                cancels.append(r["cancel_ms"])
                for k, v in r.get("reasons", {}).items():
                    reasons[k] = reasons.get(k, 0) + v
            else:
                misses += 1
        false_reasons: dict[str, int] = {}
        held, resumed = [], 0
        for i, text in enumerate(BACKCHANNELS):
            r = await overlap_trial(runtime, cfg, speech[text], at_s=0.8 + 0.1 * i, seed=50 + i)
            false_hits.append(bool(r["interrupted"]))
            if r["resumed"]:
                resumed += 1
                held.append(r["held_ms"])
            for k, v in r.get("reasons", {}).items():
                false_reasons[k] = false_reasons.get(k, 0) + v
        results[label] = {
            "barge_in_min_ms": min_ms,
            "barge_in_pause_ms": cfg.barge_in_pause_ms,
            "interruptions": len(INTERRUPTIONS),
            "missed_interruptions": misses,
            "stop_ms": summarize(stops),  # onset -> first stop signal (hold or cancel)
            "cancel_ms": summarize(cancels),  # onset -> AgentInterrupted (reply cancelled)
            "stop_reasons": reasons,
            "backchannel_resumed": resumed,  # held, then played on
            "backchannel_held_ms": summarize(held),  # how long the agent was silent for them
            "backchannels": len(BACKCHANNELS),
            "false_interruptions": sum(false_hits),
            "false_interruption_rate": round(sum(false_hits) / len(false_hits), 3),
            "false_interruption_items": [t for t, hit in zip(BACKCHANNELS, false_hits, strict=True) if hit],
            "false_interruption_reasons": false_reasons,
        }
    return results


def _optional_bench(module: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    run = getattr(mod, "run", None)
    if not callable(run):
        return None
    t0 = time.perf_counter()
    try:
        result = run()
    except Exception as exc:  # another team's bench failing must not lose ours
        return {"error": f"{type(exc).__name__}: {exc}"}
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    elif hasattr(result, "__dataclass_fields__"):
        result = asdict(result)
    return {"seconds": round(time.perf_counter() - t0, 1), "result": result}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
    }


async def run_async(args) -> dict[str, Any]:
    from voice.runtime import VoiceRuntime

    base = PipelineConfig.from_env(llm_backend=args.llm)
    t0 = time.perf_counter()
    runtime = await asyncio.to_thread(VoiceRuntime.load, base)
    load_s = time.perf_counter() - t0
    texts = UTTERANCES[: args.turns]
    speech = await asyncio.to_thread(synthesize_all, runtime, [*UTTERANCES, *INTERRUPTIONS, *BACKCHANNELS])
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {k: v for k, v in asdict(base).items() if k != "acknowledgements"},
        "load_seconds": {**runtime.load_seconds, "total": round(load_s, 1)},
        "utterances": list(texts),
    }
    try:
        # 1) one session, speculation on vs off (interleaved passes, same utterances)
        single: dict[str, list] = {"on": [], "off": []}
        lags: list[float] = []
        for rep in range(args.repeats):
            for mode in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                cfg = replace(base, speculation=(mode == "on"))
                mon = LoopLagMonitor().start()
                r = await conversation(runtime, cfg, speech, texts, name=f"single-{mode}-{rep}")
                await mon.stop()
                lags.extend(mon.lags_ms)
                single[mode].extend(r["metrics"])
                result.setdefault("single_stats", []).append({"mode": mode, **r["stats"]})
                print(f"  single session, speculation {mode}: {len(r['metrics'])} turns", file=sys.stderr)
        result["single"] = {
            "speculation_on": _summary(single["on"]),
            "speculation_off": _summary(single["off"]),
            "loop_lag_ms": {"p50": _p(lags, 50), "p99": _p(lags, 99), "max": _p(lags, 100)},
        }
        on, off = single["on"], single["off"]
        result["speculation_saving_ms"] = {
            "response_onset_p50": _diff(off, on, "response_onset_ms"),
            "answer_onset_p50": _diff(off, on, "answer_onset_ms"),
        }
        # 2) N concurrent sessions (staggered so they do not speak in lockstep)
        mon = LoopLagMonitor().start()
        runs = await asyncio.gather(
            *(
                conversation(
                    runtime,
                    base,
                    speech,
                    texts[i % len(texts) :] + texts[: i % len(texts)],
                    name=f"conc-{i}",
                    start_delay=0.7 * i,
                )  # fmt: skip
                for i in range(args.sessions)
            )
        )
        lag = await mon.stop()
        conc = [m for r in runs for m in r["metrics"]]
        result["concurrent"] = {"sessions": args.sessions, **_summary(conc), "loop_lag_ms": lag}
        result["concurrent"]["compute_pool"] = asdict(runtime.compute.stats)
        print(f"  {args.sessions} concurrent sessions: {len(conc)} turns", file=sys.stderr)
        # 3) barge-in and backchannels
        gates = [("configured", {})]
        if base.barge_in_pause_ms and not args.quick:
            gates.append(("no_hold", {"barge_in_pause_ms": 0}))  # contrast: stop only on the cancel
        result["barge_in"] = await barge_in_suite(runtime, base, speech, gates)
        print("  barge-in trials done", file=sys.stderr)
    finally:
        runtime.close()
    # 4) the other teams' numbers, when their benches exist
    for key, module in (
        ("endpointing", "evals.voice.endpointing"),
        ("clinical_rules", "clinical_rules.bench"),
        ("llm", "evals.voice.llm_bench"),
    ):
        if args.quick:
            break
        got = await asyncio.to_thread(_optional_bench, module)
        if got is not None:
            result[key] = got
    return result


def _p(values, q):
    v = percentile(values, q)
    return None if v is None else round(v, 1)


def _diff(off, on, key):
    a, b = _onsets(off, key), _onsets(on, key)
    if not a or not b:
        return None
    return round(statistics.median(a) - statistics.median(b), 1)


def print_table(r: dict[str, Any], out=sys.stdout) -> None:
    def row(label, s):
        if not s or s.get("n", 0) == 0:
            return f"{label:<34} {'-':>8} {'-':>8}"
        return f"{label:<34} {s['p50']:>8} {s['p95']:>8}   (n={s['n']})"

    m = r["machine"]
    print(f"\nvoice bench  {r['date']}  {m['cpu']} x{m['cores']}  load {m['loadavg_at_start']}", file=out)
    print(f"{'':<34} {'p50 ms':>8} {'p95 ms':>8}", file=out)
    for mode in ("speculation_on", "speculation_off"):
        s = r["single"][mode]
        print(f"-- one session, {mode.replace('_', ' ')} (fallback rate {s['fallback_rate']})", file=out)
        print(row("  response onset", s["response_onset_ms"]), file=out)
        print(row("  answer onset", s["answer_onset_ms"]), file=out)
        for stage, st in s["stages_ms"].items():
            print(row(f"    {stage}", st), file=out)
    sv = r["speculation_saving_ms"]
    print(
        f"speculation saves (p50): response {sv['response_onset_p50']} ms, answer {sv['answer_onset_p50']} ms",
        file=out,
    )
    c = r["concurrent"]
    print(f"-- {c['sessions']} concurrent sessions (fallback rate {c['fallback_rate']})", file=out)
    print(row("  response onset", c["response_onset_ms"]), file=out)
    print(row("  answer onset", c["answer_onset_ms"]), file=out)
    print(f"  event-loop lag p99 {c['loop_lag_ms']['p99']} ms (max {c['loop_lag_ms']['max']})", file=out)
    print(f"one-session event-loop lag p99 {r['single']['loop_lag_ms']['p99']} ms", file=out)
    for label, b in r["barge_in"].items():
        print(
            f"-- barge-in, {label} (hold at {b['barge_in_pause_ms']} ms, cancel gate {b['barge_in_min_ms']} ms): "
            f"stop p50 {b['stop_ms']['p50']} / p95 {b['stop_ms']['p95']} ms, cancel p50 {b['cancel_ms']['p50']} ms, "
            f"missed {b['missed_interruptions']}/{b['interruptions']}, "
            f"false interruptions {b['false_interruptions']}/{b['backchannels']} "
            f"({b['false_interruption_items']}), backchannels held then resumed {b['backchannel_resumed']} "
            f"(held p50 {b['backchannel_held_ms']['p50']} ms)",
            file=out,
        )
    for key in ("endpointing", "clinical_rules", "llm"):
        if key in r:
            print(f"-- {key}: {json.dumps(r[key], default=str)[:600]}", file=out)


def markdown(r: dict[str, Any]) -> str:
    """The headline numbers as Markdown tables (for docs/benchmarks.md)."""

    def cell(s, key="p50"):
        return "–" if not s or s.get(key) is None else f"{s[key]:.0f}"

    lines = ["| measure | p50 ms | p95 ms | n |", "| --- | ---: | ---: | ---: |"]
    for mode, label in (
        ("speculation_on", "1 session, speculation on"),
        ("speculation_off", "1 session, speculation off"),
    ):
        s = r["single"][mode]
        for key, name in (("response_onset_ms", "response onset"), ("answer_onset_ms", "answer onset")):
            lines.append(f"| {label}: {name} | {cell(s[key])} | {cell(s[key], 'p95')} | {s[key]['n']} |")
        for stage, st in s["stages_ms"].items():
            lines.append(f"| {label}: {stage} | {cell(st)} | {cell(st, 'p95')} | {st['n']} |")
    c = r["concurrent"]
    for key, name in (("response_onset_ms", "response onset"), ("answer_onset_ms", "answer onset")):
        lines.append(
            f"| {c['sessions']} sessions: {name} | {cell(c[key])} | {cell(c[key], 'p95')} | {c[key]['n']} |"
        )
    for stage, st in c["stages_ms"].items():
        lines.append(f"| {c['sessions']} sessions: {stage} | {cell(st)} | {cell(st, 'p95')} | {st['n']} |")
    for label, b in r["barge_in"].items():
        for key, name in (
            ("stop_ms", "stop signal"),
            ("cancel_ms", "cancel"),
            ("backchannel_held_ms", "backchannel hold"),
        ):
            lines.append(
                f"| barge-in {name}, {label} (hold {b['barge_in_pause_ms']} ms) | {cell(b[key])} | "
                f"{cell(b[key], 'p95')} | {b[key]['n']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.voice.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default=os.environ.get("VOICE_LLM_BACKEND", "llama_cpp"))
    ap.add_argument("--turns", type=int, default=len(UTTERANCES))
    ap.add_argument("--repeats", type=int, default=2, help="single-session passes per speculation mode")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="skip the fast-gate contrast and the other benches")
    ap.add_argument("--out", default="bench-results/voice.json")
    args = ap.parse_args(argv)
    result = asyncio.run(run_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print_table(result)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
