"""The deployment under test, started on loopback as deploy/ lays it out without containers:
HAProxy (deploy/haproxy.cfg as shipped) in front of two daphne processes (``python -m
triage.serve``, as the units run it), a Celery worker, and the PostgreSQL and Redis named by
DATABASE_URL / REDIS_URL. Logs go to a run directory; ``kill`` ends a web node with SIGKILL
(a crash: no drain, no goodbye to its sockets).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from evals.triage.bench_socket.server import ROOT, free_port

HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it; closed with the run
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_bytes()[-n:].decode(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    run_dir: Path
    nodes: tuple[str, ...] = ("web1", "web2")
    startup_timeout_s: float = 900.0
    username: str = "bench-clinician"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    extra_env: dict[str, str] = field(default_factory=dict)
    lb_port: int = 0
    web: dict[str, Proc] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)
    others: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        for key in ("DATABASE_URL", "REDIS_URL"):
            if not env.get(key):
                raise RuntimeError(f"{key} is not set: the cluster benchmark runs on PostgreSQL and Redis")
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        env["DJANGO_ENV"] = "development"
        env["PYTHONUNBUFFERED"] = "1"
        env["TRIAGE_PRELOAD_MODELS"] = "1"  # /readyz passes once the models are loaded
        env["TRIAGE_INPROCESS_BEAT"] = "0"
        return env

    def start(self) -> Cluster:
        if shutil.which("haproxy") is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        py, manage = sys.executable, str(ROOT / "manage.py")
        for args in (
            ["migrate", "--noinput", "-v", "0"],
            ["ensure_demo_clinician", "--username", self.username, f"--password={self.password}"],
        ):
            done = subprocess.run(
                [py, manage, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
            )
            if done.returncode != 0:
                raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        worker = Proc(
            "worker",
            [
                py,
                "-m",
                "celery",
                "-A",
                "triage",
                "worker",
                "--loglevel=WARNING",
                "--concurrency=1",
                "-n",
                "bench@%h",
            ],
            env,
            self.run_dir / "worker.log",
        )
        self.others.append(worker.start())
        for name in self.nodes:
            port = free_port()
            self.web_ports[name] = port
            argv = [py, "-m", "triage.serve", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
            self.web[name] = Proc(
                name, argv, {**env, "TRIAGE_NODE_ID": name}, self.run_dir / f"{name}.log"
            ).start()
        for name in self.nodes:
            self._wait_ready(name)
        self.lb_port = free_port()
        lb_env = {
            **env,
            "TRIAGE_LB_BIND": f"127.0.0.1:{self.lb_port}",
            "TRIAGE_WEB1": f"127.0.0.1:{self.web_ports[self.nodes[0]]}",
            "TRIAGE_WEB2": f"127.0.0.1:{self.web_ports[self.nodes[1]]}",
            "TRIAGE_LB_HOST": "127.0.0.1",
        }
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(HAPROXY_CONFIG)], env=lb_env, capture_output=True, text=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c failed: {check.stdout}{check.stderr}")
        lb = Proc(
            "haproxy", ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)], lb_env, self.run_dir / "haproxy.log"
        )
        self.others.append(lb.start())
        self._wait_balanced()
        return self

    def _wait_ready(self, name: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://127.0.0.1:{self.web_ports[name]}/readyz"
        while time.monotonic() < deadline:
            if not self.web[name].alive():
                raise RuntimeError(f"{name} exited:\n{self.web[name].log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)  # model loading takes minutes on a small machine; polled, bounded above
        raise RuntimeError(
            f"{name} not ready in {self.startup_timeout_s:.0f} s:\n{self.web[name].log_tail()}"
        )

    def _wait_balanced(self) -> None:
        """Both nodes in service at the balancer (its health checks on /readyz passed)."""
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while seen != set(self.nodes) and time.monotonic() < deadline:
            try:
                token = secrets.token_urlsafe(24)
                request = urllib.request.Request(
                    f"{self.url}/ws/patient/{token}/", headers={"Host": "127.0.0.1"}
                )
                urllib.request.urlopen(request, timeout=5)
            except urllib.error.HTTPError as exc:  # a socket path over plain HTTP: 404, still answered
                seen.add(exc.headers.get("X-Triage-Node", ""))
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        if seen != set(self.nodes):
            raise RuntimeError(f"the balancer did not reach both nodes (saw {sorted(seen)})")

    def kill(self, name: str) -> float:
        """SIGKILL a web node (a crash); returns when it happened (monotonic)."""
        proc = self.web[name]
        proc.process.send_signal(signal.SIGKILL)
        at = time.monotonic()
        proc.process.wait(10)
        return at

    def stop(self) -> None:
        for proc in [*self.web.values(), *reversed(self.others)]:
            proc.stop()
