"""Clinician -> patient voice latency through the server (issue 13 part 6).

    python -m evals.triage.bench_handoff [--frames 500] [--relayed]
    python -m evals.triage.bench_handoff --browser [--bursts 100]   # mouth-to-ear in two browsers

Runs the real ASGI application in this process (the talk socket's consumer, the resampler,
the LiveCall) against the configured PostgreSQL and Redis; the patient's socket is a recorder
on the LiveCall (no voice models are loaded: the call is put in the process registry by hand).
Each 20 ms clinician frame is sent at real-time pace; the figure is the time from the frame
leaving the clinician's socket to the same audio being handed to the patient's socket. The
patient's 20 ms frames go the other way at the same pace (fed to the call, timed to the talk
socket). ``--relayed``: the clinician's socket is on another node than the call (the call is
left out of this process's registry), so both ways go through the channel layer
(triage/call_link.py) over the configured Redis.

Mouth-to-ear is measured with ``--browser`` (evals/triage/bench_handoff_browser.py: two headless
Chromium over loopback, a table and bench-results/handoff-browser.json). Without it the browser
parts are estimated here from their fixed sizes: capture (one 20 ms frame, plus the worklet's 128-sample render
quantum) and playback (one render quantum, plus the output device latency the page reports).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import time
from pathlib import Path

CAPTURE_MS = 20.0 + 128 / 48000 * 1000  # one frame, plus the capture worklet's render quantum
PLAYBACK_MS = 128 / 48000 * 1000  # the playback worklet starts on its next render quantum


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def _run(frames: int, relayed: bool = False) -> dict:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth import get_user_model
    from django.test import Client

    from clinical_rules import PatientContext
    from config.asgi import application
    from triage import listen, live, services
    from triage.dashboard import services as dashboard_services
    from triage.management.commands.ensure_demo_clinician import ensure_clinician_group

    @database_sync_to_async
    def setup():
        user, _ = get_user_model().objects.get_or_create(username="bench_handoff")
        user.groups.add(ensure_clinician_group())
        session, _ = services.create_session(subject="self", age_band="", pregnant=None, consent=True)
        client = Client()
        client.force_login(user)
        return user, session, f"sessionid={client.cookies['sessionid'].value}".encode()

    user, session, cookie = await setup()
    sid = str(session.pk)
    arrived: dict[bytes, float] = {}

    async def patient_json(message):
        pass

    async def patient_bytes(data):
        arrived[data[4:12]] = time.perf_counter()

    call = live.LiveCall(sid, PatientContext(subject="self", age_band=None, pregnant=None))
    call.start_recording()
    call.attach(patient_json, patient_bytes)
    if relayed:  # the call's node is another process as far as the talk socket can tell
        await asyncio.wait_for(call.reachable.wait(), 10)
    else:
        live._calls[sid] = call
    await database_sync_to_async(dashboard_services.take_over)(sid, user)
    talk = WebsocketCommunicator(
        application,
        f"/ws/clinician/calls/{sid}/talk/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", cookie)],
    )
    assert (await talk.connect(timeout=10))[0]
    ready = json.loads(await talk.receive_from(timeout=10))
    assert ready["type"] == "talk_ready", ready
    sent: dict[bytes, float] = {}
    fed: dict[bytes, float] = {}
    heard: dict[bytes, float] = {}

    async def clinician_hears():
        while True:
            frame = await talk.receive_from(timeout=10)
            if isinstance(frame, bytes) and frame[0] == listen.PATIENT:
                heard[frame[4:12]] = time.perf_counter()

    hearing = asyncio.ensure_future(clinician_hears())
    t0 = time.perf_counter()
    for i in range(frames):
        # Identity resampling (no voice models: the playback rate is 16 kHz), so the first
        # samples of the frame arrive unchanged and identify it.
        marker = struct.pack("<4h", i, 1, 2, 3)
        sent[marker] = time.perf_counter()
        await talk.send_to(bytes_data=marker + b"\x00\x00" * 316)
        patient = struct.pack("<4h", i, 3, 2, 1)
        fed[patient] = time.perf_counter()
        await call.feed_audio(patient + b"\x00\x00" * 316)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.perf_counter()))
    await asyncio.sleep(0.5)
    hearing.cancel()
    await talk.disconnect()
    await call.end("bench_done")
    hops = [(arrived[m] - t) * 1000 for m, t in sent.items() if m in arrived]
    back = [(heard[m] - t) * 1000 for m, t in fed.items() if m in heard]
    server_p95 = _p(hops, 0.95)
    return {
        "path": "relayed (channel layer)" if relayed else "in-process",
        "frames": frames,
        "delivered": len(hops),
        "server_ms": {
            "p50": round(statistics.median(hops), 2),
            "p95": round(server_p95, 2),
            "max": round(max(hops), 2),
        },
        "patient_to_clinician": {
            "delivered": len(back),
            "p50": round(statistics.median(back), 2),
            "p95": round(_p(back, 0.95), 2),
            "max": round(max(back), 2),
        },
        "browser_fixed_ms": round(CAPTURE_MS + PLAYBACK_MS, 1),
        "one_way_estimate_p95_ms_before_output_device": round(server_p95 + CAPTURE_MS + PLAYBACK_MS, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--relayed", action="store_true", help="the clinician on another node than the call")
    parser.add_argument("--browser", action="store_true", help="mouth-to-ear in two headless Chromium")
    parser.add_argument("--bursts", type=int, default=100, help="--browser: tone bursts (one every 0.5 s)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/handoff-browser.json"))
    args = parser.parse_args()
    if args.browser:
        from evals.triage.bench_handoff_browser import run

        result = run(args.bursts, args.out)
        raise SystemExit(0 if result["met"] else 1)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    print(json.dumps(asyncio.run(_run(args.frames, args.relayed)), indent=2))


if __name__ == "__main__":
    main()
