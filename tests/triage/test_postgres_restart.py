"""PostgreSQL restarted in the middle of a live call (issue 17): no turn lost or duplicated.

A throwaway PostgreSQL cluster (tests/triage/pg_cluster.py: its own port and directory; the
shared server is never touched) holds the database of a daphne started as deployed (a
subprocess on loopback, the real models). A caller speaks real speech over the real socket;
after the first exchange PostgreSQL is stopped (``pg_ctl stop -m fast``: connections are
terminated, as in ``pg_ctlcluster ... restart``), the caller says the next thing while it is
down and the agent answers, then PostgreSQL starts again and the call goes on. What must hold:

* the call continues through the outage (the answer is heard while the database is down);
* every patient turn the caller's page saw as a final transcript and every agent reply it
  heard is stored exactly once (Turn rows and their audit events), in order;
* ``verify_audit`` passes; daphne logs no traceback (the writer waits and says so once).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from tests.browser.harness import ROOT, Daphne
from tests.speech import silence, speech_pcm16k
from tests.triage.pg_cluster import PostgresCluster
from tests.triage.test_hostile_socket import FAILURE, Call, speak

pytestmark = [pytest.mark.services, pytest.mark.models, pytest.mark.timeout(900)]

SAID = (
    "I have had a headache since this morning.",  # before the outage
    "It started about six hours ago and it is getting worse.",  # while PostgreSQL is down
    "No, I have not hit my head.",  # after it is back
)
DOWN_SECONDS = float(os.environ.get("TRIAGE_PG_DOWN_SECONDS", "8"))


@pytest.fixture(scope="module")
def deployment():
    """The throwaway cluster, migrated, and daphne on it (embedded Celery and channel layer:
    the database is the only server in this drill)."""
    for text in SAID:
        speech_pcm16k(text)
    cluster = PostgresCluster().init()
    server = None
    try:
        cluster.createdb("drill")
        env = {
            "DATABASE_URL": cluster.url("drill"),
            "REDIS_URL": "",
            "DJANGO_ENV": "development",
            "TRIAGE_PRELOAD_MODELS": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            timeout=600,
        )
        server = Daphne(env, "daphne-pg-restart.log")
        server.wait_ready(timeout=600)
        server.env = {**os.environ, **env}
        yield cluster, server
    finally:
        if server is not None:
            server.stop()
        cluster.destroy()


def stored(env: dict, session_id: str) -> dict:
    """Turns and audit events of the session, read in a separate process (the drill's
    database is not this test process's)."""
    script = f"""
import json, django
django.setup()
from triage.models import AuditEvent, Turn
turns = list(Turn.objects.filter(session_id={session_id!r}).order_by("index").values("speaker", "text", "idempotency_key"))
kinds = list(AuditEvent.objects.filter(session_id={session_id!r}).order_by("seq").values_list("kind", "payload"))
print(json.dumps({{"turns": turns, "patient_events": [p["text"] for k, p in kinds if k == "patient_turn"],
                   "agent_events": [p["text"] for k, p in kinds if k == "agent_turn"]}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


async def exchange(call: Call, text: str, after_reply: int) -> tuple[dict, dict]:
    """Say ``text``; wait for its final transcript and the agent's whole answer."""
    start = len(call.socket.messages)
    await speak(call, silence(300) + speech_pcm16k(text) + silence(1500))

    final = await call.socket.until(
        lambda m: m["type"] == "transcript" and m["final"] and m["text"], 120, since=start
    )
    reply = await call.socket.until(
        lambda m: m["type"] == "agent_reply_end" and m["reply_id"] > after_reply, 180, since=start
    )
    await call.socket.send(
        json.dumps({"type": "playback", "reply_id": reply["reply_id"], "played_ms": 60000})
    )
    return final, reply


async def test_postgres_restart_mid_call_loses_and_doubles_no_turn(deployment):
    cluster, server = deployment
    log_start = server.log_path.stat().st_size
    call = await Call.create(server.base_url)
    ready = await call.connect()
    assert ready["type"] == "ready", ready
    greeting = await call.socket.until(lambda m: m["type"] == "agent_reply_end", 180)
    await call.socket.send(
        json.dumps({"type": "playback", "reply_id": greeting["reply_id"], "played_ms": 60000})
    )

    first, reply1 = await exchange(call, SAID[0], greeting["reply_id"])
    # --- PostgreSQL goes away; the caller talks and is answered while it is down ---------------
    await asyncio.to_thread(cluster.stop)
    down_at = time.monotonic()
    second, reply2 = await exchange(call, SAID[1], reply1["reply_id"])
    answered_down = not cluster.running()
    await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
    await asyncio.to_thread(cluster.start)
    down_s = time.monotonic() - down_at
    # --- back: the call goes on ----------------------------------------------------------------
    third, reply3 = await exchange(call, SAID[2], reply2["reply_id"])
    await call.socket.send(json.dumps({"type": "end"}))
    await call.socket.until(lambda m: m["type"] == "ended", 120)
    await call.socket.close()
    assert answered_down, "the answer came while PostgreSQL was down"

    finals = [m["text"] for m in (first, second, third)]
    heard = [greeting, reply1, reply2, reply3]
    record = await asyncio.to_thread(stored, server.env, call.session_id)
    patient = [t["text"] for t in record["turns"] if t["speaker"] == "patient"]
    agent = [t["text"] for t in record["turns"] if t["speaker"] == "agent"]
    keys = [t["idempotency_key"] for t in record["turns"]]
    assert patient == finals, f"patient turns stored {patient}, said {finals}"
    assert record["patient_events"] == finals
    assert len(agent) == len(heard) and record["agent_events"] == agent, (agent, record["agent_events"])
    assert len(set(keys)) == len(keys), "a turn stored twice"

    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK: 1 session chain(s)" in verify.stdout, verify.stdout  # this drill's database: one call
    log = server.log_path.read_bytes()[log_start:].decode("utf-8", "replace")
    failures = [line for line in log.splitlines() if FAILURE.search(line)]
    assert failures == [], "server tracebacks/errors:\n" + "\n".join(failures[:40])
    waits = [line for line in log.splitlines() if "database unreachable" in line]

    print("\nPostgreSQL restart mid-call (throwaway cluster, daphne, real models): held")
    for name, value in (
        ("PostgreSQL down", f"{down_s:.1f} s (pg_ctl stop -m fast, then start)"),
        ("answered while down", f"reply {reply2['reply_id']} to {second['text']!r}"),
        ("patient turns said / stored", f"{len(finals)} / {len(patient)} (0 lost, 0 duplicated)"),
        ("agent replies heard / stored", f"{len(heard)} / {len(agent)}"),
        ("writer's log while down", f"{len(waits)} warning(s), 0 tracebacks"),
        ("verify_audit", verify.stdout.strip().splitlines()[-1]),
    ):
        print(f"  {name:<32} {value}")
