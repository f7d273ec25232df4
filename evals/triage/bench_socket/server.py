"""The server under test and the machine it runs on.

``LocalServer`` starts daphne as a subprocess on a free loopback port, as a deployment runs
it: by default on the embedded defaults in a throwaway directory (SQLite, in-memory channel
layer, Celery eager), so benchmark calls never land in a real audit trail; with
``configured=True`` on the DATABASE_URL / REDIS_URL of the environment. It migrates the
database and creates a clinician login for the dashboard socket first.

``wait_quiet`` is the quiet-machine gate: CPU busy share from /proc/stat.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    configured: bool = False
    startup_timeout_s: float = 120.0
    username: str = "bench-clinician"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = 0
    log_path: Path | None = None
    _dir: tempfile.TemporaryDirectory | None = None
    _proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        if not self.configured:
            for key in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
                env.pop(key, None)
            env["TRIAGE_VAR_DIR"] = self._dir.name
        return env

    def start(self) -> LocalServer:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-socket-")
        env = self._env()
        py = sys.executable
        manage = str(ROOT / "manage.py")
        for args in (
            ["migrate", "--noinput", "-v", "0"],
            ["ensure_demo_clinician", "--username", self.username, f"--password={self.password}"],
        ):
            subprocess.run(
                [py, manage, *args], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300
            )
        self.port = free_port()
        self.log_path = Path(self._dir.name) / "daphne.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(
            [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"daphne exited ({self._proc.returncode}); log: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"daphne did not answer /healthz in {self.startup_timeout_s:.0f} s")

    def log_tail(self, n: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as f:
        values = [float(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values), idle


def busy_share(window_s: float = 0.5) -> float:
    """Share of all cores busy over ``window_s`` (0..1). Blocking: call it in a thread."""
    total0, idle0 = _cpu_times()
    time.sleep(window_s)
    total1, idle1 = _cpu_times()
    total = total1 - total0
    return 0.0 if total <= 0 else max(0.0, 1.0 - (idle1 - idle0) / total)


@dataclass(frozen=True)
class Quiet:
    quiet: bool  # the gate opened (False: gave up after max_wait_s: a noisy measurement)
    busy: float  # last busy share seen
    waited_s: float
    load1: float


def wait_quiet(max_busy: float, max_wait_s: float, window_s: float = 0.5) -> Quiet:
    """Block until the CPUs are at most ``max_busy`` busy for one window, or ``max_wait_s``."""
    t0 = time.monotonic()
    while True:
        busy = busy_share(window_s)
        waited = time.monotonic() - t0
        if busy <= max_busy:
            return Quiet(True, round(busy, 3), round(waited, 2), os.getloadavg()[0])
        if waited >= max_wait_s:
            return Quiet(False, round(busy, 3), round(waited, 2), os.getloadavg()[0])
