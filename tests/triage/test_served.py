"""The web process as deployed (``python -m triage.serve``: daphne) over real TCP sockets:
no patient token in anything it logs, unknown socket paths refused without a traceback, a
half-sent HTTP request timed out, an idle WebSocket left alone.

The client side is a few lines of RFC 6455 over a plain socket (no client library needed);
the server is the real daphne process with the real settings, on the test database.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import time

import pytest

from tests.triage import clinician_support as support
from tests.triage.clinician_support import REPO, free_port, make_clinician, session_cookie, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(180)]

IDLE_TIMEOUT_S = 1.0


class Served:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.log_path = tmp_path / "daphne.log"
        self.mark = 0  # where the current test's part of the log starts
        env = {
            **os.environ,
            "DATABASE_URL": support.test_database_url(),
            "PYTHONUNBUFFERED": "1",  # the access log goes to stdout: line by line into the file
            "TRIAGE_PRELOAD_MODELS": "0",
            "TRIAGE_INPROCESS_BEAT": "0",
            "TRIAGE_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT_S),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triage.serve", "-b", "127.0.0.1", "-p", str(self.port),
             "--websocket_connect_timeout", "5", "config.asgi:application"],
            cwd=REPO, env=env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._accepting, 60, "daphne accepting")

    def _accepting(self) -> bool:
        assert self.proc.poll() is None, self.log()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def log(self) -> str:
        """What it logged since the current test started."""
        time.sleep(0.5)  # let the last lines land
        return self.log_path.read_text(errors="replace")[self.mark :]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture(scope="module")
def daphne(django_db_setup, django_db_blocker, tmp_path_factory):
    """One server for the module (start-up takes a while on a busy machine), on the test database."""
    with django_db_blocker.unblock():
        server = Served(tmp_path_factory.mktemp("served"))
    yield server
    server.stop()


@pytest.fixture
def served(daphne):
    daphne.mark = len(daphne.log_path.read_text(errors="replace"))
    return daphne


class WebSocket:
    """Just enough of a WebSocket client: the handshake, masked text frames out, frames in."""

    def __init__(self, port: int, path: str, cookie: bytes | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n"
        )
        if cookie:
            request += f"Cookie: {cookie.decode()}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, f"closed during the handshake: {self.buffer!r}"
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.status = int(head.split()[1])

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("socket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame (servers do not mask)."""
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", self._read(8))
        return first & 0x0F, self._read(length)

    def close_code(self) -> int:
        while True:
            opcode, payload = self.frame()
            if opcode == 0x8:
                return struct.unpack(">H", payload[:2])[0]

    def send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        assert len(data) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + masked)

    def json(self) -> dict:
        while True:
            opcode, payload = self.frame()
            assert opcode != 0x8, f"closed: {payload!r}"
            if opcode == 0x1:
                return json.loads(payload)

    def close(self) -> None:
        self.sock.close()


def test_no_patient_token_in_the_access_log_or_the_application_log(served):
    token = secrets.token_urlsafe(32)  # the same shape as a real one; this one opens nothing
    ws = WebSocket(served.port, f"/ws/patient/{token}/")
    assert ws.status == 101
    assert ws.json()["code"] == "session_not_found"
    assert ws.close_code() == 4404
    ws.close()
    # The same path as plain HTTP: a 404, which Django logs as a warning with the path.
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as http:
        http.sendall(f"GET /ws/patient/{token}/?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert b" 404 " in http.recv(4096).split(b"\r\n", 1)[0]
    log = served.log()
    assert "WSCONNECT /ws/patient/[redacted]/" in log, log
    assert "GET /ws/patient/[redacted]/" in log, log
    assert token not in log, log


@pytest.mark.parametrize("path", ["/ws/nothing-here/", "/ws/patient//"])
def test_unknown_socket_paths_are_refused_without_a_traceback(served, path):
    ws = WebSocket(served.port, path)
    assert ws.status == 101 and ws.close_code() == 4404
    ws.close()
    log = served.log()
    assert "Traceback" not in log and " 500 " not in log and "ERROR" not in log, log


def test_a_half_sent_request_is_timed_out(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the blank line never comes
        started = time.monotonic()
        while slow.recv(4096):  # whatever it answers (408 or nothing), then it closes
            pass
        waited = time.monotonic() - started
    assert waited < IDLE_TIMEOUT_S + 5, f"held for {waited:.1f}s"


def test_an_idle_websocket_outlives_the_http_idle_timeout(served):
    cookie = session_cookie(make_clinician())
    ws = WebSocket(served.port, "/ws/dashboard/", cookie=cookie)
    assert ws.status == 101 and ws.json()["type"] == "snapshot"
    assert ws.json()["type"] == "queue"  # the waiting line follows every snapshot (admission control)
    time.sleep(IDLE_TIMEOUT_S * 3)
    ws.send_text(json.dumps({"type": "ping", "t": 7}))
    assert ws.json() == {"type": "pong", "t": 7}
    ws.close()
