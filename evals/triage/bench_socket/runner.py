"""Runs the socket-level benchmark: modes, summary, table, JSON (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voice.telemetry import percentile

from . import scenarios, speech
from .client import CallClient
from .server import ROOT, LocalServer, wait_quiet

STAGGER_S = 0.7  # concurrent callers start this far apart


@dataclass
class Options:
    url: str | None = None  # an existing server; None: start daphne here
    username: str = ""  # clinician login for the alert (with --url)
    password: str = ""
    configured: bool = False  # the started server uses DATABASE_URL / REDIS_URL
    calls: int = 8  # one-session calls (each: first statement + answers)
    turns: int = 3  # caller turns per call at most
    hesitant: int = 4  # one-session calls of hesitant callers ("um" / "er" pauses; 0: skip)
    concurrent: int = 4  # callers at once (0: skip)
    concurrent_calls: int = 2  # calls per concurrent caller
    barge: int = 3  # backchannels and interruptions each, spoken over the greeting
    alerts: int = 3
    max_busy: float = 0.4  # quiet machine: at most this share of the CPUs busy ...
    quiet_wait_s: float = 20.0  # ... waited for at most this long before each utterance
    out: Path | None = ROOT / "bench-results" / "socket.json"

    @classmethod
    def quick(cls, **kw) -> Options:
        """One short call, one backchannel, one interruption, one alert; no waiting for quiet."""
        base = dict(calls=1, turns=1, hesitant=0, concurrent=0, barge=1, alerts=1, quiet_wait_s=0.0)
        base.update(kw)
        return cls(**base)


def summary(values: list[float | None]) -> dict[str, Any]:
    xs = [v for v in values if v is not None]
    return {
        "n": len(xs),
        "missing": len(values) - len(xs),
        "p50_ms": round(percentile(xs, 50), 1) if xs else None,
        "p95_ms": round(percentile(xs, 95), 1) if xs else None,
        "max_ms": round(max(xs), 1) if xs else None,
    }


def _turn_summary(turns: list[scenarios.TurnResult]) -> dict[str, Any]:
    firsts = [t for t in turns if t.first_statement]
    return {
        "turns": len(turns),
        "noisy": sum(1 for t in turns if t.quiet is False),
        "response_onset": summary([t.response_onset_ms for t in turns]),
        "answer_onset": summary([t.answer_onset_ms for t in turns]),
        "answer_heard": summary([t.answer_heard_ms for t in turns]),
        "talked_over": sum(t.talked_over for t in turns),
        "first_statements": len(firsts),
        "first_statements_talked_over": sum(t.talked_over for t in firsts),
        "unanswered": sum(not t.answered for t in turns),
    }


def _barge_summary(results: list[scenarios.BargeResult]) -> dict[str, Any]:
    back = [r for r in results if r.kind == "backchannel"]
    inter = [r for r in results if r.kind == "interruption"]
    return {
        "pause": summary([r.pause_ms for r in results]),
        "interrupt": summary([r.interrupt_ms for r in inter]),
        "resume": summary([r.resume_ms for r in back]),
        "backchannel_hold": summary([r.held_ms for r in back]),
        "backchannels": len(back),
        "false_interruptions": sum(r.false_interruption for r in back),
        "interruptions": len(inter),
        "missed_interruptions": sum(r.missed for r in inter),
        "noisy": sum(1 for r in results if r.quiet is False),
    }


def _utterances() -> dict[str, Any]:
    """Every line, synthesized (or read from the WAV cache) before any call starts."""
    calls = [
        [speech.utterance(first), *(speech.utterance(a) for a in answers)] for first, answers in speech.CALLS
    ]
    hesitant = [
        [speech.utterance(first, pauses_ms=pauses), *(speech.utterance(a) for a in answers)]
        for first, pauses, answers in speech.HESITANT_CALLS
    ]
    return {
        "calls": calls,
        "hesitant": hesitant,
        "backchannels": [speech.utterance(t) for t in speech.BACKCHANNELS],
        "interruptions": [speech.utterance(t) for t in speech.INTERRUPTIONS],
        "alert": [speech.utterance(t) for t in (speech.ALERT_LEAD_IN, speech.RED_FLAG, speech.ALERT_TAIL)],
    }


async def _warm_up(base: str) -> None:
    """One unmeasured call: the first call after a server start loads the models."""
    client = CallClient(base)
    await client.start(ready_timeout=600)
    await client.wait(lambda: any(r.first_audio_at for r in client.replies.values()), 120)
    await client.end()


SCENARIO_TIMEOUT_S = 240.0  # one call of any kind; past it the call counts as failed


async def _bounded(what: str, coro, failures: list[str]):
    """One scenario with a time limit; a failure is recorded and the run goes on."""
    try:
        result = await asyncio.wait_for(coro, SCENARIO_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - reported in the output, the run goes on
        failures.append(f"{what}: {type(exc).__name__}: {exc}")
        print(f"  {what}: FAILED ({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)
        return None
    print(f"  {what}: done", file=sys.stderr, flush=True)
    return result


async def _measure(base: str, opts: Options, lines: dict[str, Any], username: str, password: str) -> dict:
    gate = None
    if opts.quiet_wait_s > 0:
        gate = functools.partial(wait_quiet, opts.max_busy, opts.quiet_wait_s)
    print("warming up (the first call loads the models)", file=sys.stderr, flush=True)
    await asyncio.wait_for(_warm_up(base), 900)
    calls = lines["calls"]
    failures: list[str] = []
    out: dict[str, Any] = {"turns": [], "barge": [], "alerts": [], "failures": failures}

    for i in range(opts.calls):
        script = calls[i % len(calls)][: opts.turns]
        got = await _bounded(
            f"call {i + 1}/{opts.calls}",
            scenarios.run_call(base, script, mode="single", call=i, seed=i, gate=gate),
            failures,
        )
        out["turns"] += got or []

    hesitant = lines["hesitant"]
    for i in range(opts.hesitant):
        script = hesitant[i % len(hesitant)][: opts.turns]
        got = await _bounded(
            f"hesitant call {i + 1}/{opts.hesitant}",
            scenarios.run_call(base, script, mode="hesitant", call=i, seed=400 + i, gate=gate),
            failures,
        )
        out["turns"] += got or []

    if opts.concurrent > 0:
        batch_quiet = None if gate is None else await asyncio.to_thread(gate)
        if batch_quiet is not None:
            out["concurrent_quiet"] = asdict(batch_quiet)

        async def caller(j: int) -> list[scenarios.TurnResult]:
            await asyncio.sleep(j * STAGGER_S)
            got = []
            for c in range(opts.concurrent_calls):
                script = calls[(j * opts.concurrent_calls + c) % len(calls)][: opts.turns]
                coro = scenarios.run_call(base, script, mode="concurrent", call=j * 100 + c, seed=50 + j)
                got += await _bounded(f"concurrent caller {j + 1} call {c + 1}", coro, failures) or []
            return got

        for got in await asyncio.gather(*(caller(j) for j in range(opts.concurrent))):
            for turn in got:  # the callers load the machine themselves: the gate is the batch's
                if batch_quiet is not None:
                    turn.quiet, turn.busy = batch_quiet.quiet, batch_quiet.busy
            out["turns"] += got

    for i in range(opts.barge):
        for kind, pool in (("backchannel", lines["backchannels"]), ("interruption", lines["interruptions"])):
            utt = pool[i % len(pool)]
            coro = scenarios.run_barge(base, utt, kind=kind, seed=200 + i, gate=gate)
            got = await _bounded(f"{kind} {i + 1}/{opts.barge}", coro, failures)
            if got is not None:
                out["barge"].append(got)

    if opts.alerts and username:
        lead, flag, tail = lines["alert"]
        for i in range(opts.alerts):
            coro = scenarios.run_alert(
                base, lead, flag, tail, username=username, password=password, seed=300 + i, gate=gate
            )
            got = await _bounded(f"alert {i + 1}/{opts.alerts}", coro, failures)
            if got is not None:
                out["alerts"].append(got)
    return out


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except Exception:
        return ""


def run(opts: Options) -> dict[str, Any]:
    lines = _utterances()
    server = None
    if opts.url is None:
        server = LocalServer(configured=opts.configured).start()
        base, username, password = server.url, server.username, server.password
    else:
        base, username, password = opts.url.rstrip("/"), opts.username, opts.password
    started = dt.datetime.now(dt.UTC)
    try:
        raw = asyncio.run(_measure(base, opts, lines, username, password))
    except BaseException:
        if server is not None:
            print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.stop()
    single = [t for t in raw["turns"] if t.mode == "single"]
    concurrent = [t for t in raw["turns"] if t.mode == "concurrent"]
    hesitant = [t for t in raw["turns"] if t.mode == "hesitant"]
    result = {
        "run_at": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()},
        "server": "started here (daphne, "
        + ("configured DB/Redis" if opts.configured else "embedded defaults")
        + ")"
        if opts.url is None
        else opts.url,
        "options": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items() if k != "password"
        },
        "summary": {
            "single": _turn_summary(single),
            "concurrent": _turn_summary(concurrent) if concurrent else None,
            "hesitant": _turn_summary(hesitant) if hesitant else None,
            "barge_in": _barge_summary(raw["barge"]) if raw["barge"] else None,
            "alert": summary([a.latency_ms for a in raw["alerts"]]) if raw["alerts"] else None,
        },
        "failures": raw["failures"],
        "turns": [t.to_dict() for t in raw["turns"]],
        "barge": [b.to_dict() for b in raw["barge"]],
        "alerts": [a.to_dict() for a in raw["alerts"]],
    }
    if "concurrent_quiet" in raw:
        result["concurrent_quiet"] = raw["concurrent_quiet"]
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(result, indent=2))
    return result


def output_path(out: Path) -> Path:
    """``--out``: a file, or a folder to write ``socket.json`` into."""
    return out / "socket.json" if out.is_dir() else out


def _cell(s: dict | None, key: str = "p50_ms") -> str:
    if not s or s.get(key) is None:
        return "-"
    return f"{s[key]:.0f}"


def format_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [("measure (ms, from the caller's side)", "p50", "p95", "n")]
    labels = {"single": "1 session", "hesitant": "1 session, hesitant", "concurrent": "concurrent"}
    for mode, label in labels.items():
        m = s.get(mode)
        if not m:
            continue
        for key in ("response_onset", "answer_onset", "answer_heard"):
            rows.append(
                (
                    f"{label}: {key.replace('_', ' ')}",
                    _cell(m[key]),
                    _cell(m[key], "p95_ms"),
                    str(m[key]["n"]),
                )
            )
    b = s.get("barge_in")
    if b:
        for key in ("pause", "interrupt", "resume", "backchannel_hold"):
            rows.append(
                (
                    f"barge-in: {key.replace('_', ' ')}",
                    _cell(b[key]),
                    _cell(b[key], "p95_ms"),
                    str(b[key]["n"]),
                )
            )
    if s.get("alert"):
        rows.append(
            (
                "red flag -> dashboard alert",
                _cell(s["alert"]),
                _cell(s["alert"], "p95_ms"),
                str(s["alert"]["n"]),
            )
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  {r[1]:>6}  {r[2]:>6}  {r[3]:>4}" for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    notes = []
    for mode in labels:
        m = s.get(mode)
        if m:
            notes.append(
                f"{mode}: {m['turns']} turns ({m['noisy']} on a noisy machine), agent started while the caller "
                f"was speaking in {m['talked_over']} ({m['first_statements_talked_over']} of "
                f"{m['first_statements']} first statements), {m['unanswered']} without an answer clause"
            )
    if b:
        notes.append(
            f"barge-in: false interruptions {b['false_interruptions']}/{b['backchannels']}, "
            f"missed interruptions {b['missed_interruptions']}/{b['interruptions']}"
        )
    if result.get("failures"):
        notes.append(f"{len(result['failures'])} scenario(s) failed: " + "; ".join(result["failures"]))
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.triage.bench_socket", description=__doc__)
    ap.add_argument("--url", help="an existing server (default: start daphne on a free loopback port)")
    ap.add_argument("--username", default="", help="clinician login for the alert measurement (with --url)")
    ap.add_argument("--password", default=os.environ.get("BENCH_CLINICIAN_PASSWORD", ""))
    ap.add_argument("--configured", action="store_true", help="started server uses DATABASE_URL/REDIS_URL")
    ap.add_argument("--quick", action="store_true", help="one short call, one barge-in each, one alert")
    ap.add_argument("--calls", type=int)
    ap.add_argument("--turns", type=int)
    ap.add_argument("--hesitant", type=int, help="calls of hesitant callers, one session (0: skip)")
    ap.add_argument("--concurrent", type=int, help="callers at once (0: skip)")
    ap.add_argument(
        "--concurrent-calls", type=int, dest="concurrent_calls", help="calls per concurrent caller"
    )
    ap.add_argument("--barge", type=int)
    ap.add_argument("--alerts", type=int)
    ap.add_argument("--max-busy", type=float)
    ap.add_argument("--quiet-wait", type=float, dest="quiet_wait_s")
    ap.add_argument("--out", type=Path)
    args = vars(ap.parse_args(argv))
    quick = args.pop("quick")
    given = {k: v for k, v in args.items() if v is not None and v != ""}
    if "out" in given:
        given["out"] = output_path(given["out"])  # checked before a run of minutes, not after
    opts = Options.quick(**given) if quick else Options(**given)
    result = run(opts)
    print(format_table(result))
    if opts.out is not None:
        print(f"\nwritten: {opts.out}")
    return 0
