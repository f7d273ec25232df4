"""Real servers and a real browser for the browser tests.

``Daphne`` runs the ASGI application in a subprocess on a free loopback port (against the
pytest-django test database, so the test can read what the server stored). Chromium is
launched by ``evals.browser.launch``, the same launcher as the browser benchmarks'.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAV_RATE = 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database)."""
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'])}"


class Daphne:
    """``daphne config.asgi:application`` in a subprocess; logs under test-artifacts/."""

    def __init__(self, env: dict[str, str], log_name: str):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / log_name
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1", **env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120.0, path: str = "/healthz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"daphne did not answer {path} in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


@contextmanager
def serve_test_database(log_name: str, *, preload_models: bool, timeout: float = 120.0) -> Iterator[Daphne]:
    """daphne serving config.asgi against the pytest-django test database (PostgreSQL: the server
    runs in another process and must see the test database), stopped on exit."""
    import pytest
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail(
            "The browser tests need PostgreSQL (DATABASE_URL=postgres://...): the server runs in "
            "another process and must see the test database."
        )
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "TRIAGE_PRELOAD_MODELS": "1" if preload_models else "0",
        # The daphne process must not pick up a production environment from the shell.
        "DJANGO_ENV": "development",
    }
    server = Daphne(env, log_name)
    try:
        server.wait_ready(timeout=timeout)
        yield server
    finally:
        server.stop()


def write_wav(path: Path, pcm16k: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WAV_RATE)
        w.writeframes(pcm16k)
    return path


def microphone_wav(path: Path, *parts: str | int, tail_ms: int = 30000) -> Path:
    """A WAV for the fake microphone: ints are milliseconds of silence, strings are spoken
    (Piper, 16 kHz). It ends in a long silence: Chromium is told not to loop the file and
    then keeps repeating its last buffer, which must therefore be silent."""
    from tests.speech import silence, speech_pcm16k

    pcm = b"".join(silence(p) if isinstance(p, int) else speech_pcm16k(p) for p in parts)
    return write_wav(path, pcm + silence(tail_ms))
