"""Two real daphne processes behind a real HAProxy running deploy/haproxy.cfg as shipped, with
the real PostgreSQL (the test database) and Redis: a patient socket's path is routed by its
token, so a reconnect reaches the same node; different tokens spread; when a node dies its
tokens go to the live one; a WebSocket (and its application close code) passes through.

The node that answered is read from ``X-Triage-Node`` (triage/node.py). Models are not
preloaded (readiness: ``on_demand``), so the processes start in seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.browser.harness import ARTIFACTS, Daphne, database_url, free_port

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy.cfg"


def node_for(base_url: str, path: str) -> str:
    request = urllib.request.Request(base_url + path, headers={"Host": "127.0.0.1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["X-Triage-Node"]
    except urllib.error.HTTPError as exc:  # a socket path over plain HTTP is a 404: still answered
        return exc.headers["X-Triage-Node"]


class HAProxy:
    def __init__(self, web1: str, web2: str):
        if shutil.which("haproxy") is None:
            pytest.fail("haproxy is not installed (Debian: apt-get install haproxy)")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "TRIAGE_LB_BIND": f"127.0.0.1:{self.port}",
            "TRIAGE_WEB1": web1,
            "TRIAGE_WEB2": web2,
            "TRIAGE_LB_HOST": "127.0.0.1",
        }
        check = subprocess.run(["haproxy", "-c", "-f", str(CONFIG)], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self._log = open(ARTIFACTS / "haproxy.log", "wb")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(CONFIG)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self._log.close()


@pytest.fixture
def cluster(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("the load-balancer test needs PostgreSQL (DATABASE_URL=postgres://...)")
    common = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_ENV": "development",
        "TRIAGE_PRELOAD_MODELS": "0",
    }
    nodes = [Daphne({**common, "TRIAGE_NODE_ID": name}, f"{name}-daphne.log") for name in ("web1", "web2")]
    lb = None
    try:
        for node in nodes:
            node.wait_ready(timeout=180, path="/readyz")
        lb = HAProxy(*(f"127.0.0.1:{node.port}" for node in nodes))
        wait_for(lambda: node_for(lb.base_url, "/healthz"), 60, "the balancer to answer")
        yield lb, nodes
    finally:
        if lb is not None:
            lb.stop()
        for node in nodes:
            node.stop()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := predicate():
                return result
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling the balancer's view of its servers, bounded above
    raise AssertionError(f"timed out waiting for {what}")


def test_routing_by_token_is_sticky_spreads_and_survives_a_node_leaving(cluster):
    lb, (web1, web2) = cluster
    tokens = [secrets.token_urlsafe(24) for _ in range(40)]
    paths = {t: f"/ws/patient/{t}/" for t in tokens}

    # Both nodes in service (health checks on /readyz passed): the tokens spread over both.
    def spread():
        placed = {t: node_for(lb.base_url, p) for t, p in paths.items()}
        return placed if set(placed.values()) == {"web1", "web2"} else None

    placed = wait_for(spread, 60, "both nodes to take sockets")
    counts = {n: list(placed.values()).count(n) for n in ("web1", "web2")}
    assert min(counts.values()) >= 5, counts  # not all on one node

    # Every reconnect of one token reaches the same node.
    for token in tokens[:10]:
        assert {node_for(lb.base_url, paths[token]) for _ in range(5)} == {placed[token]}

    # `?node=` (a caller sent to a node: 4421, 4422) reaches that node whatever the token's hash;
    # without it the query string does not change the hash.
    for token in tokens[:10]:
        other = "web2" if placed[token] == "web1" else "web1"
        assert node_for(lb.base_url, paths[token] + f"?node={other}") == other
        assert node_for(lb.base_url, paths[token] + "?x=1") == placed[token]

    # Pages and the API are balanced separately, on any ready node.
    assert node_for(lb.base_url, "/healthz") in ("web1", "web2")

    # web1 dies: once the checks notice, its tokens are served by web2 (the reconnect of a call
    # that lived on web1 reaches a live node; call ownership decides what happens there).
    web1.process.kill()
    web1.process.wait(timeout=15)
    wait_for(
        lambda: all(node_for(lb.base_url, p) == "web2" for p in paths.values()), 60, "web1's tokens to move"
    )
    # A hint naming the dead node falls back to the hash (web2 now).
    assert node_for(lb.base_url, paths[tokens[0]] + "?node=web1") == "web2"


async def test_a_patient_websocket_passes_through_the_balancer(cluster):
    import websockets

    lb, _ = cluster
    url = lb.base_url.replace("http", "ws", 1) + "/ws/patient/not-a-real-token/"
    async with websockets.connect(url, origin="http://127.0.0.1") as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert error["type"] == "error" and error["code"] == "session_not_found"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd.code == 4404  # the application's close code crossed the balancer
