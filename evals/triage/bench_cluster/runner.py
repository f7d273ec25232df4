"""Runs the multi-node load test: the calls, the node kill, the checks, the table and JSON."""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evals.triage.bench_socket import scenarios, speech
from evals.triage.bench_socket.runner import STAGGER_S, _commit, summary
from evals.triage.bench_socket.server import ROOT

from .caller import ClusterCaller
from .cluster import Cluster

CALL_TIMEOUT_S = 420.0


@dataclass
class Options:
    callers: int = 4  # at once, through the balancer
    turns: int = 3  # caller turns per call: the first before the kill, the rest after
    alerts: int = 1  # red-flag calls after the failover, with a clinician dashboard open
    out: Path | None = ROOT / "bench-results" / "cluster.json"
    logs: Path | None = None  # keep the processes' logs here (default: a temporary directory)


@dataclass
class CallOutcome:
    call: int
    session_id: str | None
    first_node: str | None
    nodes: list[str]
    on_killed_node: bool
    completed: bool  # the caller ended it and got `ended`
    gaps: list[dict]
    finals: list[str]
    failure: str | None = None


def _lines(opts: Options) -> tuple[list[list[speech.Utterance]], tuple[speech.Utterance, ...]]:
    calls = []
    for i in range(opts.callers):
        first, answers = speech.CALLS[i % len(speech.CALLS)]
        calls.append([speech.utterance(t) for t in (first, *answers)][: opts.turns])
    alert = tuple(speech.utterance(t) for t in (speech.ALERT_LEAD_IN, speech.RED_FLAG, speech.ALERT_TAIL))
    return calls, alert


async def _call(
    i: int,
    base: str,
    lines: list[speech.Utterance],
    at_barrier: asyncio.Queue,
    killed: asyncio.Future,
    turns: list[scenarios.TurnResult],
) -> CallOutcome:
    """One caller: greeting, first statement; waits at the barrier while a node is killed;
    if it was on that node, rides the reconnect until the resumed call has spoken; answers."""
    await asyncio.sleep(i * STAGGER_S)
    client = ClusterCaller(base, seed=i)
    failure = None
    reached = False
    victim = None
    try:
        await client.start()
        await scenarios._greeting_played(client)
        turns.append(await scenarios.measure_turn(client, lines[0], k=0, mode="before_kill", call=i))
        reached = True
        await at_barrier.put((i, client.node))
        victim = await killed
        if client.node == victim:
            if not await client.wait(lambda: bool(client.gaps), 30):
                raise RuntimeError("the socket on the killed node did not drop")
            if not await client.resumed_reply_played(120):
                raise RuntimeError(f"not resumed (gave up: {client.gave_up}, gaps: {client.gaps})")
        for k, utt in enumerate(lines[1:], start=1):
            turns.append(await scenarios.measure_turn(client, utt, k=k, mode="after_kill", call=i))
            if client.state == "escalated":
                break
    except Exception as exc:  # noqa: BLE001 - reported in the output, the run goes on
        failure = f"{type(exc).__name__}: {exc}"
        print(f"  call {i + 1}: FAILED ({failure})", file=sys.stderr, flush=True)
    finally:
        if not reached:
            await at_barrier.put((i, None))
        await client.end()
    return CallOutcome(
        call=i,
        session_id=client.session_id,
        first_node=client.nodes[0] if client.nodes else None,
        nodes=client.nodes,
        on_killed_node=bool(client.nodes) and client.nodes[0] == victim,
        completed=client.ended,
        gaps=[g.to_dict() for g in client.gaps],
        finals=[text for _, text in client.finals],
        failure=failure,
    )


async def _warm_up(cluster: Cluster, lines: list[speech.Utterance]) -> None:
    """One unmeasured turn on each node, straight to its port: the first calls after a start
    pay for warming caches (phrases, the model's prompt) that a running service has warm."""

    async def one(port: int) -> None:
        await scenarios.run_call(f"http://127.0.0.1:{port}", lines[:1], mode="warm_up", call=-1)

    await asyncio.gather(*(one(port) for port in cluster.web_ports.values()))


async def _measure(cluster: Cluster, opts: Options) -> dict[str, Any]:
    lines, alert_lines = _lines(opts)
    base = cluster.url
    print("warming up each node (one unmeasured turn)", file=sys.stderr, flush=True)
    await asyncio.wait_for(_warm_up(cluster, lines[0]), 600)
    load_at_calls = os.getloadavg()
    at_barrier: asyncio.Queue = asyncio.Queue()
    killed: asyncio.Future = asyncio.get_running_loop().create_future()
    turns: list[scenarios.TurnResult] = []
    tasks = [
        asyncio.ensure_future(
            asyncio.wait_for(_call(i, base, lines[i], at_barrier, killed, turns), CALL_TIMEOUT_S)
        )
        for i in range(opts.callers)
    ]
    placed = [await at_barrier.get() for _ in range(opts.callers)]
    per_node = collections.Counter(node for _, node in placed if node)
    victim = per_node.most_common(1)[0][0] if per_node else cluster.nodes[0]
    print(f"all callers mid-call {dict(per_node)}; killing {victim} (SIGKILL)", file=sys.stderr, flush=True)
    kill_at = await asyncio.to_thread(cluster.kill, victim)
    killed.set_result(victim)
    outcomes = []
    for i, task in enumerate(tasks):
        try:
            outcomes.append(await task)
        except Exception as exc:  # noqa: BLE001 - the call's own time limit
            outcomes.append(CallOutcome(i, None, None, [], False, False, [], [], f"{type(exc).__name__}"))
    alerts = []
    for j in range(opts.alerts):
        try:
            got = await asyncio.wait_for(
                scenarios.run_alert(
                    base, *alert_lines, username=cluster.username, password=cluster.password, seed=300 + j
                ),
                240,
            )
            alerts.append(got.to_dict())
        except Exception as exc:  # noqa: BLE001
            alerts.append({"latency_ms": None, "failure": f"{type(exc).__name__}: {exc}"})
    return {
        "load_at_calls": load_at_calls,
        "load_at_end": os.getloadavg(),
        "victim": victim,
        "kill_at": kill_at,
        "per_node_at_kill": dict(per_node),
        "calls": outcomes,
        "turns": turns,
        "alerts": alerts,
    }


def _stored(outcomes: list[CallOutcome], wait_s: float = 120.0) -> dict[str, Any]:
    """What PostgreSQL holds for each call against what its caller saw: every final transcript
    the caller got is one stored patient turn (audit chain and transcript), none twice."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from triage.models import AuditEvent, OutboxMessage, Turn

    sids = [o.session_id for o in outcomes if o.session_id]
    deadline = time.monotonic() + wait_s
    while (
        OutboxMessage.objects.filter(
            topic="turn.record", processed_at__isnull=True, payload__session_id__in=sids
        ).exists()
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)  # the Celery worker records the turns; bounded above
    per_call, lost, duplicated = [], 0, 0
    for o in outcomes:
        if not o.session_id:
            continue
        said = collections.Counter(o.finals)
        turns = collections.Counter(
            Turn.objects.filter(session_id=o.session_id, speaker="patient").values_list("text", flat=True)
        )
        audited = collections.Counter(
            e.payload.get("text", "")
            for e in AuditEvent.objects.filter(session_id=o.session_id, kind="patient_turn")
        )
        call_lost = sum((said - turns).values()) + sum((said - audited).values())
        call_dup = sum((turns - said).values()) + sum((audited - said).values())
        lost, duplicated = lost + call_lost, duplicated + call_dup
        moves = list(
            AuditEvent.objects.filter(session_id=o.session_id, kind="call_moved").values_list(
                "payload", flat=True
            )
        )
        per_call.append(
            {
                "call": o.call,
                "said": sum(said.values()),
                "stored_turns": sum(turns.values()),
                "audited_turns": sum(audited.values()),
                "lost": call_lost,
                "duplicated": call_dup,
                "moves": moves,
            }
        )
    verify = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "turns_lost": lost,
        "turns_duplicated": duplicated,
        "per_call": per_call,
        "verify_audit": {
            "ok": verify.returncode == 0,
            # Its verdict ("OK: n session chain(s), ..." or the broken links); logs go to stderr.
            "output": verify.stdout.strip().splitlines()[-3:] or verify.stderr.strip().splitlines()[-3:],
        },
    }


def _ms_values(gaps: list[dict], key: str) -> list[float | None]:
    return [g.get(key) for g in gaps]


def run(opts: Options) -> dict[str, Any]:
    logs_tmp = None
    if opts.logs is None:
        logs_tmp = tempfile.TemporaryDirectory(prefix="bench-cluster-")
        run_dir = Path(logs_tmp.name)
    else:
        run_dir = opts.logs
    started = dt.datetime.now(dt.UTC)
    load_at_start = os.getloadavg()
    print("synthesizing the callers' lines (cached after the first run)", file=sys.stderr, flush=True)
    _lines(opts)
    print("starting HAProxy, web1, web2 (loading models), a Celery worker", file=sys.stderr, flush=True)
    cluster = Cluster(run_dir)
    try:
        t0 = time.monotonic()
        cluster.start()
        startup_s = round(time.monotonic() - t0, 1)
        print(f"cluster ready in {startup_s} s at {cluster.url}", file=sys.stderr, flush=True)
        raw = asyncio.run(_measure(cluster, opts))
    except BaseException:
        for proc in [*cluster.web.values(), *cluster.others]:
            print(f"--- {proc.name} log tail ---\n{proc.log_tail()}", file=sys.stderr)
        raise
    finally:
        cluster.stop()
        if logs_tmp is not None:
            logs_tmp.cleanup()
    outcomes: list[CallOutcome] = raw["calls"]
    stored = _stored(outcomes)
    moved = [o for o in outcomes if o.on_killed_node]
    resumed = [
        o for o in moved if o.gaps and o.gaps[0]["ready_node"] and o.gaps[0]["ready_node"] != raw["victim"]
    ]
    gaps = [o.gaps[0] for o in resumed]
    turns: list[scenarios.TurnResult] = raw["turns"]
    alerts = raw["alerts"]
    result = {
        "run_at": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "load_at_start": load_at_start,
            "load_at_calls": raw["load_at_calls"],
            "load_at_end": raw["load_at_end"],
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "cluster": {"nodes": list(cluster.nodes), "startup_s": startup_s, "killed": raw["victim"]},
        "summary": {
            "calls": len(outcomes),
            "completed": sum(o.completed for o in outcomes),
            "on_killed_node": len(moved),
            "resumed_on_other_node": len(resumed),
            "cut_off_until_ready": summary(_ms_values(gaps, "ready_ms")),
            "cut_off_until_heard": summary(_ms_values(gaps, "heard_ms")),
            "turns_lost": stored["turns_lost"],
            "turns_duplicated": stored["turns_duplicated"],
            "answer_heard": summary([t.answer_heard_ms for t in turns]),
            "answer_heard_after_kill": summary([t.answer_heard_ms for t in turns if t.mode == "after_kill"]),
            "alerts_delivered": sum(a.get("latency_ms") is not None for a in alerts),
            "alerts": len(alerts),
            "alert_latency": summary([a.get("latency_ms") for a in alerts]),
            "verify_audit_ok": stored["verify_audit"]["ok"],
        },
        "calls": [asdict(o) for o in outcomes],
        "stored": stored,
        "turns": [t.to_dict() for t in turns],
        "alerts": alerts,
        "failures": [f"call {o.call + 1}: {o.failure}" for o in outcomes if o.failure],
    }
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(json.dumps(result, indent=2, default=str))
    return result


def _cell(s: dict | None, key: str) -> str:
    return "-" if not s or s.get(key) is None else f"{s[key]:.0f}"


def format_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [
        ("calls completed", f"{s['completed']} of {s['calls']}"),
        (f"calls on the killed node ({result['cluster']['killed']})", str(s["on_killed_node"])),
        ("  resumed on the other node", f"{s['resumed_on_other_node']} of {s['on_killed_node']}"),
        (
            "  cut off: drop -> ready (ms, p50 / max)",
            f"{_cell(s['cut_off_until_ready'], 'p50_ms')} / {_cell(s['cut_off_until_ready'], 'max_ms')}",
        ),
        (
            "  cut off: drop -> agent heard again (ms, p50 / max)",
            f"{_cell(s['cut_off_until_heard'], 'p50_ms')} / {_cell(s['cut_off_until_heard'], 'max_ms')}",
        ),
        ("turns lost / duplicated", f"{s['turns_lost']} / {s['turns_duplicated']}"),
        (
            "answer heard (ms, p50 / p95, n)",
            f"{_cell(s['answer_heard'], 'p50_ms')} / {_cell(s['answer_heard'], 'p95_ms')}, "
            f"{s['answer_heard']['n']}",
        ),
        (
            "  after the kill",
            f"{_cell(s['answer_heard_after_kill'], 'p50_ms')} / {_cell(s['answer_heard_after_kill'], 'p95_ms')}, "
            f"{s['answer_heard_after_kill']['n']}",
        ),
        (
            "red flag -> dashboard alert (delivered, ms p50)",
            f"{s['alerts_delivered']} of {s['alerts']}, {_cell(s['alert_latency'], 'p50_ms')}",
        ),
        ("verify_audit", "OK" if s["verify_audit_ok"] else "BROKEN"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if result.get("failures"):
        lines += ["", f"{len(result['failures'])} call(s) failed: " + "; ".join(result["failures"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.triage.bench_cluster", description=__doc__)
    ap.add_argument("--callers", type=int, default=Options.callers)
    ap.add_argument("--turns", type=int, default=Options.turns)
    ap.add_argument("--alerts", type=int, default=Options.alerts)
    ap.add_argument("--out", type=Path, default=Options.out)
    ap.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = ap.parse_args(argv)
    if args.turns < 2:
        ap.error("--turns must be at least 2 (one before the kill, one after)")
    opts = Options(callers=args.callers, turns=args.turns, alerts=args.alerts, out=args.out, logs=args.logs)
    result = run(opts)
    print(format_table(result))
    if opts.out is not None:
        print(f"\nwritten: {opts.out}")
    s = result["summary"]
    ok = s["turns_lost"] == 0 and s["turns_duplicated"] == 0 and s["verify_audit_ok"]
    return 0 if ok else 1
