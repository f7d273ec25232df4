"""Test support for the clinician side: users, loopback SMTP and webhook servers, a private
redis-server, a real Celery worker/beat subprocess, and polling helpers.

Nothing here is a fake: the SMTP server is aiosmtpd, the webhook server is a real HTTP
server, Redis is a real redis-server, and the worker is ``celery -A config worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
ORIGIN = (b"origin", b"http://127.0.0.1")


# --- users -------------------------------------------------------------------------------------


def make_clinician(username: str = "nurse", **extra):
    from triage.management.commands.ensure_demo_clinician import ensure_clinician_group

    user = get_user_model().objects.create_user(username=username, password=None, **extra)
    user.groups.add(ensure_clinician_group())
    return user


def make_admin(username: str = "admin"):
    return get_user_model().objects.create_superuser(username=username, password=None, email="")


def make_plain_user(username: str = "visitor"):
    return get_user_model().objects.create_user(username=username, password=None)


def session_cookie(user) -> bytes:
    """A real login session (database session store) as a Cookie header value."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def ws_headers(user=None, extra: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", session_cookie(user)))
    return headers + (extra or [])


# --- polling -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def receive_until(communicator, predicate, timeout: float) -> dict:
    """Read JSON messages from a WebsocketCommunicator until one matches."""

    async def loop():
        while True:
            message = await communicator.receive_json_from(timeout=timeout)
            if predicate(message):
                return message

    return await asyncio.wait_for(loop(), timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- loopback webhook server --------------------------------------------------------------------


@dataclass
class WebhookServer:
    """A real HTTP server on loopback that records POSTs; the first ``fail_first`` answer 503."""

    fail_first: int = 0
    requests: list[dict] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    received: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/page"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner._lock:
                    owner.attempts += 1
                    failing = owner.attempts <= owner.fail_first
                    if not failing:
                        owner.requests.append(
                            {
                                "headers": dict(self.headers),
                                "body": json.loads(body),
                                "raw": body,
                                "t": time.time(),
                            }
                        )
                        owner.received.set()
                self.send_response(503 if failing else 200)
                self.end_headers()
                self.wfile.write(b"busy" if failing else b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# --- loopback SMTP server (aiosmtpd) -----------------------------------------------------------


class SmtpSink:
    """aiosmtpd on loopback, keeping every message it accepts."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        self.received = threading.Event()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
                sink.messages.append(
                    {
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "data": envelope.content.decode(),
                    }
                )
                sink.received.set()
                return "250 OK"

        self.port = free_port()
        self._make = lambda: Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller = None

    def start(self) -> SmtpSink:
        # A controller cannot be restarted; a new one on the same port can.
        self.controller = self._make()
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# --- a private redis-server ----------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server on a spare loopback port (no persistence): kill it and start it
    again to simulate a broker outage that loses everything queued."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._accepting, 10, f"redis-server on {self.port}")
        return self

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        self.kill()


# --- pointing this process's Celery app at a broker --------------------------------------------


@contextlib.contextmanager
def celery_broker(url: str):
    """Publish from this (pytest) process to ``url`` instead of the settings' broker."""
    from config.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)

    def reset():
        with contextlib.suppress(Exception):
            if app._pool is not None:
                app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = url
    app.conf.task_always_eager = False
    reset()
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        reset()


# --- real Celery processes --------------------------------------------------------------------


def test_database_url() -> str:
    """The database pytest-django created, for subprocesses (transactional tests commit)."""
    s = connection.settings_dict
    return f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class CeleryProcess:
    """``celery -A config worker`` (or ``beat``) as a subprocess with its own environment."""

    def __init__(self, kind: str, env: dict[str, str], tmp: Path):
        self.kind = kind
        self.env = env
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / f"celery-{kind}-{uuid.uuid4().hex[:6]}.log"
        self.ready = threading.Event()

    def start(self, timeout: float = 60) -> CeleryProcess:
        celery = str(Path(sys.executable).with_name("celery"))
        if self.kind == "worker":
            args = [celery, "-A", "config", "worker", "-P", "solo", "--without-gossip", "--without-mingle",
                    "--without-heartbeat", "-l", "INFO", "-n", f"test-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
            marker = "ready."
        else:
            args = [
                celery,
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(self.tmp / f"beat-{uuid.uuid4().hex[:6]}"),
            ]
            marker = "beat: Starting"
        log = open(self.log_path, "w")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        wait_for(
            lambda: marker in self.log() or self.proc.poll() is not None, timeout, f"celery {self.kind} start"
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"celery {self.kind} exited:\n{self.log()[-3000:]}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (unacked work stays unacked)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


def celery_env(broker_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env
