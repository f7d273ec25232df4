"""Evaluate and time the semantic safety net on the dev vignettes.

    python -m voice.safety_net_bench                 # table + bench-results/safety_net.json
    python -m voice.safety_net_bench --calibrate     # threshold sweep (false alerts vs recall)
    python -m voice.safety_net_bench --json out.json --latency-vignettes 40

Reports, per vignette, the rules' level and the net's nearest entry and score; then the net's
recall on emergencies (expected level 1-2) on its own and on those the rules missed, its false
alerts on routine and self-care vignettes (expected 4-5) on its own and as a clinician would see
them (the net is quiet once the rules escalated), and its cost: per streaming partial (a new
partial every two words, window cache warm as in a call) and re-assessing a 100-word partial
(rules + net). Times are thread CPU time (the embedder uses one BLAS thread) and wall time; on
a shared machine the wall figures are noisy.

Lives in voice/ because it loads the embedding model (clinical_rules never imports voice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinical_rules import TriageInterview, assess, load_ruleset
from clinical_rules.evaluate import VIGNETTE_DIR, Vignette, load_vignettes
from clinical_rules.safety_net import SafetyNet, rules_already_urgent

DEFAULT_JSON = Path("bench-results") / "safety_net.json"
FALSE_ALERT_TARGET = 0.10


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def score_vignettes(net: SafetyNet, vignettes: Sequence[Vignette], rs) -> list[dict[str, Any]]:
    rows = []
    for v in vignettes:
        a = assess(v.text, context=v.context, ruleset=rs)
        best = net.scores(v.text)
        top = best[0] if best else None
        # as in a call: a partial every two words (newest window only), then the final in full
        words = v.text.split()
        stream = [net.scores(" ".join(words[:n]), newest_only=True)[:1] for n in range(2, len(words), 2)]
        partial_score = max([t[0][0] for t in stream if t] + [0.0])
        rows.append(
            {
                "id": v.id,
                "expected": v.expected,
                "tags": list(v.tags),
                "rules_level": int(a.level) if a.level is not None else None,
                "rules_urgent": rules_already_urgent(a),
                "entry": net.bank.entries[top[1]].id if top and top[0] > 0 else None,
                "score": round(top[0], 4) if top else 0.0,
                "partial_score": round(partial_score, 4),
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]], threshold: float, partial_threshold: float) -> dict[str, Any]:
    def hit(r):
        return r["score"] >= threshold

    def stream_hit(r):
        return hit(r) or r["partial_score"] >= partial_threshold

    def rate(part, whole):
        return round(len(part) / len(whole), 4) if whole else None

    emerg = [r for r in rows if r["expected"] <= 2]
    missed = [r for r in emerg if r["rules_level"] is None or r["rules_level"] > r["expected"]]
    benign = [r for r in rows if r["expected"] >= 4]
    urgent = [r for r in rows if r["expected"] == 3]
    return {
        "threshold": threshold,
        "partial_threshold": partial_threshold,
        "n": len(rows),
        "n_emergency": len(emerg),
        "net_recall_emergency": rate([r for r in emerg if hit(r)], emerg),
        "n_rules_missed_emergency": len(missed),
        "net_recall_rules_missed": rate([r for r in missed if hit(r)], missed),
        "rules_missed_caught": [r["id"] for r in missed if hit(r)],
        "n_routine_selfcare": len(benign),
        "false_alert_rate": rate([r for r in benign if hit(r)], benign),
        # what a clinician would see: the net stays quiet once the rules escalated
        "false_alert_rate_shown": rate([r for r in benign if hit(r) and not r["rules_urgent"]], benign),
        "false_alerts": [r["id"] for r in benign if hit(r)],
        "urgent_hit_rate": rate([r for r in urgent if hit(r)], urgent),
        # streamed: any partial (newest window, partial threshold) or the final
        "stream_recall_emergency": rate([r for r in emerg if stream_hit(r)], emerg),
        "stream_false_alert_rate": rate([r for r in benign if stream_hit(r)], benign),
        "stream_false_alerts": [r["id"] for r in benign if stream_hit(r)],
    }


def calibrate(
    rows: list[dict[str, Any]], lo: float = 0.50, hi: float = 0.72, step: float = 0.01
) -> dict[str, Any]:
    """Final threshold: most recall with false alerts <= target; then the partial threshold: the
    lowest that keeps the streamed false-alert rate (partials + final) within the target too."""
    sweep = []
    t = lo
    while t <= hi + 1e-9:
        s = summarise(rows, round(t, 3), 1.0)
        sweep.append({k: s[k] for k in ("threshold", "net_recall_emergency", "false_alert_rate")})
        t += step
    ok = [s for s in sweep if (s["false_alert_rate"] or 0) <= FALSE_ALERT_TARGET]
    best = max(ok, key=lambda s: (s["net_recall_emergency"], -s["threshold"])) if ok else None
    partial = []
    if best is not None:
        for k in range(0, 31):
            pt = round(best["threshold"] + 0.01 * k, 3)
            s = summarise(rows, best["threshold"], pt)
            partial.append(
                {
                    k2: s[k2]
                    for k2 in ("partial_threshold", "stream_recall_emergency", "stream_false_alert_rate")
                }
            )
    ok_p = [p for p in partial if (p["stream_false_alert_rate"] or 0) <= FALSE_ALERT_TARGET]
    return {
        "target_false_alert_rate": FALSE_ALERT_TARGET,
        "sweep": sweep,
        "recommended": best,
        "partial_sweep": partial,
        "recommended_partial": min(ok_p, key=lambda p: p["partial_threshold"]) if ok_p else None,
    }


def _timed(fn) -> tuple[float, float]:
    c0, w0 = time.thread_time(), time.perf_counter()
    fn()
    return (time.thread_time() - c0) * 1000.0, (time.perf_counter() - w0) * 1000.0


def time_partials(net: SafetyNet, vignettes: Sequence[Vignette], every: int = 2) -> dict[str, Any]:
    """Each vignette streamed as partials (a new one every ``every`` words), cache warm."""
    cpu, wall = [], []
    for v in vignettes:
        net._cache.clear()  # a new call: nothing of this caller embedded yet
        words = v.text.split()
        for n in range(every, len(words) + every, every):
            c, w = _timed(lambda n=n, words=words: net.check(" ".join(words[:n]), newest_only=True))
            cpu.append(c)
            wall.append(w)
    return _latency(cpu, wall)


def time_100_words(net: SafetyNet, vignettes: Sequence[Vignette], rs, runs: int = 20) -> dict[str, Any]:
    """Re-assessing a 100-word partial: the rules (after the partials that led to it) plus the
    net's newest window; and, for comparison, the full check a final transcript of 100 words gets."""
    words = " ".join(v.text for v in vignettes).split()
    rules_cpu, net_cpu, both_cpu, both_wall, final_cpu, final_wall = [], [], [], [], [], []
    for run in range(runs):
        start = (run * 37) % max(1, len(words) - 100)
        text_words = words[start : start + 100]
        iv = TriageInterview(ruleset=rs)
        for n in range(3, 97, 3):  # the call so far: partials every three words
            iv.observe_partial(" ".join(text_words[:n]))
        text = " ".join(text_words)
        net._cache.clear()
        w0 = time.perf_counter()
        c_rules, _ = _timed(lambda text=text, iv=iv: iv.observe_partial(text))
        c_net, _ = _timed(lambda text=text: net.check(text, newest_only=True))
        both_wall.append((time.perf_counter() - w0) * 1000.0)
        rules_cpu.append(c_rules)
        net_cpu.append(c_net)
        both_cpu.append(c_rules + c_net)
        net._cache.clear()
        c, w = _timed(lambda text=text: net.check(text))
        final_cpu.append(c)
        final_wall.append(w)
    return {
        "rules_plus_net": _latency(both_cpu, both_wall),
        "rules_only": _latency(rules_cpu, rules_cpu),
        "net_only": _latency(net_cpu, net_cpu),
        "final_full_check": _latency(final_cpu, final_wall),
    }


def _latency(cpu: list[float], wall: list[float]) -> dict[str, Any]:
    return {
        "n": len(cpu),
        "cpu_ms_p50": round(statistics.median(cpu), 2) if cpu else None,
        "cpu_ms_p95": round(_pct(cpu, 95), 2),
        "wall_ms_p50": round(statistics.median(wall), 2) if wall else None,
        "wall_ms_p95": round(_pct(wall, 95), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voice.safety_net_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--vignettes", default=str(VIGNETTE_DIR / "dev.yaml"))
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the full results")
    parser.add_argument("--calibrate", action="store_true", help="print the threshold sweep")
    parser.add_argument(
        "--latency-vignettes", type=int, default=60, help="vignettes streamed for timing (0: none)"
    )
    args = parser.parse_args(argv)

    from voice.embedding import load_embedder

    rs = load_ruleset()
    t0 = time.perf_counter()
    net = SafetyNet(load_embedder())
    load_s = time.perf_counter() - t0
    vignettes = load_vignettes(args.vignettes)
    rows = score_vignettes(net, vignettes, rs)
    summary = summarise(rows, net.threshold, net.bank.partial_threshold)
    result: dict[str, Any] = {
        "bank_version": net.bank.version,
        "entries": len(net.bank.entries),
        "descriptions": sum(len(e.descriptions) for e in net.bank.entries),
        "load_s": round(load_s, 2),
        "summary": summary,
        "calibration": calibrate(rows),
        "vignettes": rows,
    }
    if args.latency_vignettes:
        sample = vignettes[: args.latency_vignettes]
        result["latency_per_partial"] = time_partials(net, sample)
        result["latency_100_words"] = time_100_words(net, vignettes, rs)

    s = summary
    print(f"safety net bank {net.bank.version}: {result['entries']} entries, {result['descriptions']} descriptions,"
          f" threshold {net.threshold}, partials {net.bank.partial_threshold} (load {load_s:.1f} s)")  # fmt: skip
    print(f"{'measure':<52}{'value':>12}")
    lines = [
        (
            "emergencies (expected 1-2), net alone: recall",
            f"{s['net_recall_emergency']:.1%} of {s['n_emergency']}",
        ),
        (
            "emergencies the rules missed: net recall",
            _maybe(s["net_recall_rules_missed"], s["n_rules_missed_emergency"]),
        ),
        (
            "routine + self-care (4-5): false alerts, net alone",
            f"{s['false_alert_rate']:.1%} of {s['n_routine_selfcare']}",
        ),
        ("routine + self-care: false alerts shown to clinician", f"{s['false_alert_rate_shown']:.1%}"),
        ("urgent (3): hit rate", f"{s['urgent_hit_rate']:.1%}"),
        ("streamed (partials + final): emergency recall", f"{s['stream_recall_emergency']:.1%}"),
        ("streamed (partials + final): false alerts", f"{s['stream_false_alert_rate']:.1%}"),
    ]
    if args.latency_vignettes:
        p, h = result["latency_per_partial"], result["latency_100_words"]
        lines += [
            ("per partial, CPU ms p50 / p95", f"{p['cpu_ms_p50']} / {p['cpu_ms_p95']}"),
            ("per partial, wall ms p50 / p95", f"{p['wall_ms_p50']} / {p['wall_ms_p95']}"),
            ("100-word partial, rules + net, CPU ms p50 / p95", _pair(h["rules_plus_net"])),
            ("100-word partial, rules + net, wall ms p50 / p95", _pair(h["rules_plus_net"], "wall")),
            ("100-word partial, rules only, CPU ms p50 / p95", _pair(h["rules_only"])),
            ("100-word final, full net check, CPU ms p50 / p95", _pair(h["final_full_check"])),
        ]
    for name, value in lines:
        print(f"{name:<52}{value:>12}" if len(value) <= 12 else f"{name:<52} {value}")
    if args.calibrate:
        cal = result["calibration"]
        print(f"\n{'threshold':>10}{'recall':>10}{'false alerts':>14}")
        for row in cal["sweep"]:
            print(
                f"{row['threshold']:>10.2f}{row['net_recall_emergency']:>10.1%}{row['false_alert_rate']:>14.1%}"
            )
        print(f"recommended (false alerts <= {FALSE_ALERT_TARGET:.0%}, most recall): {cal['recommended']}")
        print(f"\n{'partial thr':>11}{'streamed recall':>17}{'streamed false alerts':>23}")
        for row in cal["partial_sweep"]:
            print(
                f"{row['partial_threshold']:>11.2f}{row['stream_recall_emergency']:>17.1%}"
                f"{row['stream_false_alert_rate']:>23.1%}"
            )
        print(f"recommended partial threshold: {cal['recommended_partial']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten {out}")
    return 0


def _maybe(rate: float | None, n: int) -> str:
    return "n/a (none missed)" if rate is None else f"{rate:.1%} of {n}"


def _pair(lat: dict[str, Any], kind: str = "cpu") -> str:
    return f"{lat[kind + '_ms_p50']} / {lat[kind + '_ms_p95']}"


if __name__ == "__main__":
    raise SystemExit(main())
