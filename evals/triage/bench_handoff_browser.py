"""Mouth-to-ear between clinician and patient, both ways, in two browsers over loopback (issue 13).

    python -m evals.triage.bench_handoff --browser [--bursts 100] [--out bench-results/handoff-browser.json]

daphne runs as deployed on loopback (``evals.triage.bench_socket.server.LocalServer``: a throwaway
embedded database, the real voice models). A patient calls from the intake page in headless
Chromium (a silent fake microphone); a clinician on the dashboard in a second Chromium takes the
call over, which opens their microphone: a fake device playing a WAV of short tone bursts. The
patient's microphone plays bursts too, from PATIENT_LEAD_S after the call starts (by then the
clinician holds the call and listens). Both pages keep their own code; an init script (the
measuring instrument, loaded only here) taps their Web Audio graphs with AnalyserNodes:

* mouth: a page's microphone source node (after the browser's echo cancellation, noise
  suppression and gain control), where each burst's onset enters the page;
* ear: everything the other page sends to its speakers, where the same onset is rendered, plus
  the output latency that page's AudioContext reports.

The bursts come at irregular intervals (350-750 ms, seeded), so the ear sequence matches the
mouth sequence at one offset only (a steady delay longer than one interval cannot pass for a
short one): the most common ear-minus-mouth difference (5 ms bins, 0-3 s) is found first, then
each mouth onset is paired with the ear onset within 60 ms of it.

Onset times are sample-accurate within a window, converted to the machine's clock through each
context's current time (to within one audio callback), so the two processes' times compare
directly.
The one-way figure covers capture (the 20 ms capture frame), the talk socket, the server, the
patient socket, the page's playback buffer and the render; not the physical microphone and
speaker (a fake device has none).
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
LEAD_S = 8.0  # silence before the bursts: the patient hears the take-over notice meanwhile
PATIENT_LEAD_S = 60.0  # the patient's bursts start this long after the call: the clinician has it
BURST_MS = 80
GAPS_MS = (350, 750)  # burst to burst, irregular (seeded)
PAIR_WINDOW_MS = 60.0
MAX_DELAY_MS = 3000.0
TARGET_P95_MS = 150.0

# The instrument: AnalyserNode taps on microphone sources ("mic") and on whatever is connected
# to a context's destination ("out"); onsets (a loud sample after >= 200 ms below the floor) are
# stored in epoch milliseconds on window.__m2e.
INSTRUMENT = """
(() => {
  const THRESH = 0.04, GAP_S = 0.2;
  const m2e = (window.__m2e = { mic: [], out: [], outputLatency: [] });
  const origConnect = AudioNode.prototype.connect;
  const taps = new WeakMap();
  function tap(ctx, kind) {
    let store = taps.get(ctx);
    if (!store) taps.set(ctx, (store = {}));
    if (store[kind]) return store[kind];
    const an = ctx.createAnalyser();
    an.fftSize = 8192;
    const sink = ctx.createGain();
    sink.gain.value = 0;
    origConnect.call(an, sink);
    origConnect.call(sink, ctx.destination);
    store[kind] = an;
    const buf = new Float32Array(an.fftSize);
    let done = -1, loudAt = -1e9;
    setInterval(() => {
      const perf = performance.now(), t = ctx.currentTime, sr = ctx.sampleRate, n = buf.length;
      an.getFloatTimeDomainData(buf);
      for (let i = 0; i < n; i++) {
        const ti = t - (n - i) / sr;
        if (ti <= done) continue;
        if (Math.abs(buf[i]) >= THRESH) {
          if (ti - loudAt > GAP_S) {
            const lat = kind === "out" ? (ctx.outputLatency || ctx.baseLatency || 0) : 0;
            m2e[kind].push(performance.timeOrigin + perf - (t - ti) * 1000 + lat * 1000);
            if (kind === "out") m2e.outputLatency.push(lat * 1000);
          }
          loudAt = ti;
        }
      }
      done = t;
    }, 10);
    return an;
  }
  AudioNode.prototype.connect = function (dest, ...rest) {
    const result = origConnect.call(this, dest, ...rest);
    if (dest instanceof AudioDestinationNode) origConnect.call(this, tap(this.context, "out"));
    return result;
  };
  const origSource = AudioContext.prototype.createMediaStreamSource;
  AudioContext.prototype.createMediaStreamSource = function (stream) {
    const source = origSource.call(this, stream);
    origConnect.call(source, tap(this, "mic"));
    return source;
  };
})();
"""


def bursts_wav(path: Path, bursts: int, lead_s: float = LEAD_S, seed: int = 13) -> tuple[Path, float]:
    """LEAD_S of silence, then ``bursts`` tone bursts (a 700 Hz + 1.3 kHz pair, faded in over
    2 ms so the onset is sharp but not a click) at irregular intervals, then 2 s of silence.
    Returns the file and its length in seconds."""
    import math
    import random

    rng = random.Random(seed)
    samples: list[int] = [0] * int(lead_s * RATE)
    burst = int(BURST_MS / 1000 * RATE)
    for _ in range(bursts):
        for i in range(burst):
            env = min(1.0, i / 32) * min(1.0, (burst - i) / 160)
            value = 0.35 * (math.sin(2 * math.pi * 700 * i / RATE) + math.sin(2 * math.pi * 1300 * i / RATE))
            samples.append(int(12000 * env * value / 0.7))
        samples.extend([0] * (int(rng.uniform(*GAPS_MS) / 1000 * RATE) - burst))
    samples.extend([0] * (2 * RATE))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path, len(samples) / RATE


def silence_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"\x00\x00" * int(seconds * RATE))
    return path


def pair(mouth: list[float], ear: list[float], after: float) -> tuple[list[float], int, float]:
    """One-way delays (ms) of the mouth onsets after ``after``: the most common ear-minus-mouth
    difference (the offset at which the irregular sequences line up), then each mouth onset's
    ear onset within PAIR_WINDOW_MS of it. Returns the delays, how many found none, the offset."""
    from collections import Counter

    mouth = sorted(t for t in mouth if t > after)
    ear = sorted(ear)
    bins = Counter(int((e - m) // 5) for m in mouth for e in ear if 0.0 <= e - m <= MAX_DELAY_MS)
    if not bins:
        return [], len(mouth), float("nan")
    # the best 5 ms bin together with its neighbours (a delay on a bin edge splits across two)
    best = max(bins, key=lambda b: bins[b - 1] + bins[b] + bins[b + 1])
    offset = best * 5 + 2.5
    delays, missing = [], 0
    for m in mouth:
        near = [e - m for e in ear if abs(e - m - offset) <= PAIR_WINDOW_MS]
        if near:
            delays.append(min(near, key=lambda d: abs(d - offset)))
        else:
            missing += 1
    return delays, missing, offset


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(bursts: int, out: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    from evals.browser import NO_BACKGROUND_THROTTLING, launch
    from evals.triage.bench_socket.client import HttpSession
    from evals.triage.bench_socket.server import LocalServer

    work = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    clinician_wav, seconds = bursts_wav(work / "clinician.wav", bursts)
    patient_wav, patient_seconds = bursts_wav(work / "patient.wav", bursts, PATIENT_LEAD_S, seed=29)
    with LocalServer() as server, sync_playwright() as p:
        base = server.url
        cookie = HttpSession(base).login(server.username, server.password)

        def browser(wav: Path):
            return launch(p, wav, extra_args=NO_BACKGROUND_THROTTLING)

        # The patient: intake page, consent, details, start; wait for the greeting to play.
        patient_browser = browser(patient_wav)
        pctx = patient_browser.new_context(bypass_csp=True)
        pctx.add_init_script(INSTRUMENT)
        page = pctx.new_page()
        page.goto(base + "/")
        page.get_by_label("I have read this and I agree").check()
        page.get_by_role("button", name="Continue").click()
        page.locator('input[name="subject"][value="self"]').check()
        page.get_by_label("Age of the person who is unwell").select_option("18_to_64")
        if page.locator("#pregnancy-field").is_visible():
            page.locator('input[name="pregnant"][value="false"]').check()
        page.get_by_role("button", name="Start the call").click()
        called = time.time()
        page.wait_for_function(
            "() => window.triage.connection && window.triage.connection.ready", timeout=600_000, polling=100
        )
        page.wait_for_function("() => window.triage.metrics.responses.length >= 1", timeout=120_000)
        session_id = page.evaluate("window.triage.sessionId")

        # The clinician: dashboard, take over (opens the microphone and the talk socket).
        clinician_browser = browser(clinician_wav)
        cctx = clinician_browser.new_context(bypass_csp=True)
        cctx.grant_permissions(["microphone"], origin=base)
        cctx.add_cookies([{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
        cctx.add_init_script(INSTRUMENT)
        dash = cctx.new_page()
        dash.on("dialog", lambda d: d.accept())
        dash.goto(base + "/dashboard/")
        row = dash.locator(f'tr[data-session="{session_id}"]')
        row.wait_for(timeout=60_000)
        taken = time.time() * 1000
        row.get_by_role("button", name="Take over call").click()
        try:
            dash.wait_for_function(
                "() => document.getElementById('listen-status').textContent.startsWith('Talking')",
                timeout=60_000,
            )
        except Exception as exc:
            status = dash.evaluate("document.getElementById('listen-status').textContent")
            raise SystemExit(
                f"the take-over did not open the talk socket: {status!r}\n{server.log_tail(3000)}"
            ) from exc
        buffered: list[int] = []  # the patient's playback backlog, source samples, once a second
        end = max(taken / 1000 + seconds, called + patient_seconds) + 1.0
        while time.time() < end:
            time.sleep(1.0)
            buffered.append(int(page.evaluate("window.triage.stats.bufferedFrames || 0")))
        live_dropped = int(page.evaluate("window.triage.stats.liveDroppedFrames || 0"))
        mouth = dash.evaluate("window.__m2e.mic")
        ear = page.evaluate("window.__m2e.out")
        latency = page.evaluate("window.__m2e.outputLatency")
        patient_mouth = page.evaluate("window.__m2e.mic")
        clinician_ear = dash.evaluate("window.__m2e.out")
        clinician_latency = dash.evaluate("window.__m2e.outputLatency")
        patient_browser.close()
        clinician_browser.close()
    # Pair only bursts (the notice the patient hears at the take-over is over by LEAD_S - 1 s).
    delays, missing, offset = pair(mouth, ear, after=taken + (LEAD_S - 1.0) * 1000)
    if not delays:
        raise SystemExit(f"no burst paired: {len(mouth)} mouth onsets, {len(ear)} ear onsets")
    back, back_missing, back_offset = pair(
        patient_mouth, clinician_ear, after=(called + PATIENT_LEAD_S - 1.0) * 1000
    )
    result = {
        "what": "clinician -> patient mouth-to-ear, two headless Chromium over loopback",
        "patient_to_clinician": {
            "bursts_sent": bursts,
            "paired": len(back),
            "unpaired": back_missing,
            "alignment_offset_ms": round(back_offset, 1),
            "one_way_ms": {
                "p50": round(statistics.median(back), 1),
                "p95": round(_p(back, 0.95), 1),
                "max": round(max(back), 1),
                "min": round(min(back), 1),
            }
            if back
            else None,
            "output_latency_ms": round(statistics.median(clinician_latency), 1)
            if clinician_latency
            else None,
            "delays_ms": [round(d, 1) for d in back],
        },
        "bursts_sent": bursts,
        "mouth_onsets": len(mouth),
        "ear_onsets": len(ear),
        "paired": len(delays),
        "alignment_offset_ms": round(offset, 1),
        "unpaired": missing,
        "one_way_ms": {
            "p50": round(statistics.median(delays), 1),
            "p95": round(_p(delays, 0.95), 1),
            "max": round(max(delays), 1),
            "min": round(min(delays), 1),
        },
        "output_latency_ms": round(statistics.median(latency), 1) if latency else None,
        "delays_ms": [round(d, 1) for d in delays],
        "patient_buffered_samples": buffered,
        "patient_live_dropped_samples": live_dropped,
        "target_p95_ms": TARGET_P95_MS,
        "met": _p(delays, 0.95) <= TARGET_P95_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": len(os.sched_getaffinity(0)),
    }
    print_table(result)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"wrote {out}")
    return result


def print_table(r: dict) -> None:
    ms = r["one_way_ms"]
    rows = [
        ("bursts paired / sent", f"{r['paired']} / {r['bursts_sent']} ({r['unpaired']} unpaired)"),
        ("one way p50", f"{ms['p50']} ms"),
        (
            "one way p95",
            f"{ms['p95']} ms (target <= {r['target_p95_ms']:.0f} ms: {'met' if r['met'] else 'NOT met'})",
        ),
        ("one way min / max", f"{ms['min']} / {ms['max']} ms"),
        ("patient output latency (reported)", f"{r['output_latency_ms']} ms, included"),
        (
            "patient -> clinician p50 / p95 / max",
            (
                f"{b['one_way_ms']['p50']} / {b['one_way_ms']['p95']} / {b['one_way_ms']['max']} ms "
                f"({b['paired']} / {b['bursts_sent']} paired)"
            )
            if (b := r["patient_to_clinician"])["one_way_ms"]
            else f"no burst paired ({b['unpaired']} unpaired)",
        ),
        ("machine", f"{r['cpus']} CPUs, load average {r['load_average']}"),
    ]
    print("\nclinician -> patient mouth-to-ear (two headless Chromium, daphne on loopback), and back")
    for name, value in rows:
        print(f"  {name:<36} {value}")
