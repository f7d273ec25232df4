"""Benchmark: red-flag words spoken → alert on a connected clinician dashboard socket.

Two measurements, both through the real ASGI application (AuthMiddleware, DashboardConsumer,
the channel layer from settings: Redis when REDIS_URL is set):

* ``event``: an EscalationRaised entering a LiveCall (the voice pipeline's callback) to the
  alert frame on the dashboard socket — the clinician side's share of the bar. No models.
* ``spoken`` (``--spoken``; needs the bundled models): Piper speech streamed in real time
  into the patient socket; from the moment the last audio frame of the red-flag phrase was
  sent to the alert on the dashboard socket (ASR partials, rules, socket push). Bar: ≤ 1 s.

``python -m evals.triage.bench_alert [--n 20] [--spoken]`` prints a table; ``run()`` returns the
numbers for ``make bench``. Without ``--use-configured-db`` it works in a throwaway SQLite
database so benchmark sessions never land in a real audit trail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

BAR_SECONDS = 1.0
LEAD_IN = "Hello, I need some advice about my symptoms."
RED_FLAG = "My face is drooping."  # fires RF-STROKE-001 on its own (clinical_rules)
TAIL = "It started about an hour ago while I was walking up the stairs to my flat."


def _summary(values: list[float]) -> dict[str, Any]:
    from voice.telemetry import percentile

    ms = [v * 1000.0 for v in values]
    return {
        "n": len(ms),
        "p50_ms": None if not ms else round(percentile(ms, 50), 1),
        "p95_ms": None if not ms else round(percentile(ms, 95), 1),
        "max_ms": None if not ms else round(max(ms), 1),
    }


async def _dashboard(user):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from config.asgi import application

    def login_cookie() -> bytes:
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [(b"origin", b"http://127.0.0.1"), (b"cookie", await sync_to_async(login_cookie)())]
    communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=headers)
    connected, _ = await communicator.connect(timeout=30)
    if not connected:
        raise RuntimeError("dashboard socket refused")
    await communicator.receive_json_from(timeout=30)  # snapshot
    return communicator


async def _next_alert(communicator, timeout: float) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(
            (await communicator.receive_output(timeout=max(0.01, deadline - time.monotonic())))["text"]
        )
        if message.get("type") == "alert":
            return message, time.monotonic()


async def measure_event(n: int, user) -> list[float]:
    from channels.db import database_sync_to_async

    from clinical_rules import PatientContext
    from triage import services
    from triage.live import LiveCall
    from voice import events as ev

    communicator = await _dashboard(user)
    delays = []
    try:
        for _ in range(n):
            session, _ = await database_sync_to_async(services.create_session)(
                subject="self", age_band="18_to_64", pregnant=None, consent=True
            )
            call = LiveCall(
                str(session.pk), PatientContext(subject="self", age_band="18_to_64", pregnant=None)
            )
            call.start_recording()
            reasons = ({"rule_id": "bench", "matched": "crushing chest pain"},)
            t = time.monotonic()
            await call._on_event(ev.EscalationRaised(1, 1, "call_emergency_services", ("bench",), reasons,
                                                     "Call emergency services now.", True, t))  # fmt: skip
            _alert, received = await _next_alert(communicator, 5)
            delays.append(received - t)
            await call.end("bench")
    finally:
        await communicator.disconnect()
    return delays


async def measure_spoken(n: int, user) -> list[dict[str, Any]]:
    """Stream speech into the patient socket; time from end of the red-flag audio to the alert."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from config.asgi import application
    from evals.speech import frames, silence, speech_pcm16k
    from triage import services

    lead, flag, tail = speech_pcm16k(LEAD_IN), speech_pcm16k(RED_FLAG), speech_pcm16k(TAIL)
    audio = frames(lead + silence(150) + flag + silence(150) + tail + silence(1500))
    frame_s = 0.02
    flag_end_index = (len(lead) + len(silence(150)) + len(flag)) // 640  # 20 ms frames of s16le 16 kHz
    tail_end_index = (len(lead) + 2 * len(silence(150)) + len(flag) + len(tail)) // 640
    results = []
    dashboard = await _dashboard(user)
    try:
        for _ in range(n):
            session, token = await database_sync_to_async(services.create_session)(
                subject="self", age_band="18_to_64", pregnant=None, consent=True
            )
            patient = WebsocketCommunicator(
                application, f"/ws/patient/{token}/", headers=[(b"origin", b"http://127.0.0.1")]
            )
            connected, _ = await patient.connect(timeout=300)
            if not connected:
                raise RuntimeError("patient socket refused")
            # Let the greeting finish (a caller waits for the agent before speaking).
            greeting_id = None
            while True:
                out = await patient.receive_output(timeout=120)
                if out.get("text"):
                    message = json.loads(out["text"])
                    if message["type"] == "agent_reply_start" and greeting_id is None:
                        greeting_id = message["reply_id"]
                    if message["type"] == "agent_reply_end" and message["reply_id"] == greeting_id:
                        break
            await patient.send_to(
                text_data=json.dumps({"type": "playback", "reply_id": greeting_id, "played_ms": 5000})
            )

            alert_task = asyncio.ensure_future(_next_alert(dashboard, 60))
            heard: list[tuple[float, dict]] = []  # (arrival, transcript message) on the patient socket

            async def listen(patient=patient, heard=heard):
                while True:
                    out = await patient.receive_output(timeout=120)
                    if out.get("text"):
                        message = json.loads(out["text"])
                        if message["type"] == "transcript":
                            heard.append((time.monotonic(), message))

            listener = asyncio.ensure_future(listen())
            start = time.monotonic()
            flag_sent = tail_sent = None
            for i, frame in enumerate(audio):
                await asyncio.sleep(max(0.0, start + i * frame_s - time.monotonic()))  # real-time pacing
                await patient.send_to(bytes_data=frame)
                if i == flag_end_index:
                    flag_sent = time.monotonic()
                if i == tail_end_index:
                    tail_sent = time.monotonic()
            alert, received = await asyncio.wait_for(alert_task, 60)
            listener.cancel()
            # The first transcript that carried the red-flag words: the pipeline event that raised it.
            recognised = next((t for t, m in heard if "drooping" in m["text"].lower()), None)
            results.append(
                {
                    "latency_s": received - flag_sent,
                    "recognition_s": None if recognised is None else recognised - flag_sent,
                    "delivery_s": None if recognised is None else received - recognised,
                    "before_speech_ended": received < (tail_sent or received),
                    "on_partial": alert.get("on_partial"),
                    "rules": alert.get("rule_ids"),
                }
            )
            await patient.send_to(text_data=json.dumps({"type": "end"}))
            await patient.disconnect()
    finally:
        await dashboard.disconnect()
    return results


def run(n: int = 20, spoken: bool = False, spoken_n: int = 3) -> dict[str, Any]:
    """Django must be set up and migrated. Returns {"event": summary, "spoken": summary|None}."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    from triage.management.commands.ensure_demo_clinician import ensure_clinician_group

    async def main():
        def user():
            u, _ = get_user_model().objects.get_or_create(username="bench-clinician")
            u.groups.add(ensure_clinician_group())
            return u

        clinician = await sync_to_async(user)()
        out: dict[str, Any] = {"event": _summary(await measure_event(n, clinician)), "spoken": None}
        if spoken:
            rows = await measure_spoken(spoken_n, clinician)
            out["spoken"] = _summary([r["latency_s"] for r in rows])
            out["spoken"]["while_patient_talking"] = sum(1 for r in rows if r["before_speech_ended"])
            out["spoken"]["runs"] = rows
            out["spoken_recognition"] = _summary(
                [r["recognition_s"] for r in rows if r["recognition_s"] is not None]
            )
            out["spoken_delivery"] = _summary([r["delivery_s"] for r in rows if r["delivery_s"] is not None])
        return out

    return asyncio.run(main())


def print_table(result: dict[str, Any]) -> None:
    print(f"{'alert path':<44} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  bar")
    rows = [("pipeline event → dashboard socket", result["event"])]
    if result.get("spoken"):
        rows.append(("red-flag words spoken → dashboard socket", result["spoken"]))
        rows.append(("  of which: spoken → words recognised (ASR)", result["spoken_recognition"]))
        rows.append(("  of which: recognised → dashboard socket", result["spoken_delivery"]))
    for name, s in rows:
        ok = s["max_ms"] is not None and s["p95_ms"] <= BAR_SECONDS * 1000
        if name.startswith("  "):
            print(f"{name:<44} {s['n']:>4} {s['p50_ms']:>9} {s['p95_ms']:>9} {s['max_ms']:>9}")
            continue
        print(f"{name:<44} {s['n']:>4} {s['p50_ms']:>9} {s['p95_ms']:>9} {s['max_ms']:>9}  "
              f"{'≤ 1 s OK' if ok else 'OVER 1 s'}")  # fmt: skip
    if result.get("spoken"):
        s = result["spoken"]
        print(
            f"alerts that arrived while the patient was still talking: {s['while_patient_talking']}/{s['n']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="repetitions of the event measurement")
    parser.add_argument("--spoken", action="store_true", help="also stream real speech (loads the models)")
    parser.add_argument("--spoken-n", type=int, default=3)
    parser.add_argument(
        "--use-configured-db", action="store_true", help="use DATABASE_URL instead of a temp SQLite"
    )
    args = parser.parse_args(argv)
    if not args.use_configured_db:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-alert-')}/bench.sqlite3"
        # Outbox work for the throwaway database must never reach a shared broker's workers.
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    if not args.use_configured_db:
        call_command("migrate", verbosity=0)
    result = run(args.n, args.spoken, args.spoken_n)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
