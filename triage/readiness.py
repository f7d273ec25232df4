"""``/readyz``: may the load balancer send this process new calls?

Separate from ``/healthz`` (is the process alive): a process that is loading its models,
cannot reach Redis or the database, or is draining for a restart is alive but not ready.
Every check runs on each request (a load balancer asks every few seconds) and is bounded by a
short timeout, so a hung dependency makes readiness fail rather than hang.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection

from . import drain
from .node import NODE_ID
from .runtime import models_state

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0


@dataclass(slots=True)
class Readiness:
    ready: bool
    node: str
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or why not
    reason: str | None = None  # the first failing check, e.g. "draining", "redis: ConnectionError"
    models: str = ""  # loaded / on_demand / loading / failed:<type> (runtime.models_state)

    def as_json(self) -> dict:
        return {"status": "ready" if self.ready else "not_ready", **asdict(self)}


def check() -> Readiness:
    checks: dict[str, str] = {}
    checks["accepting_calls"] = "draining" if drain.draining() else "ok"
    state = models_state()
    checks["models"] = "ok" if state in ("loaded", "on_demand") else state
    checks["database"] = _database()
    checks["redis"] = _redis()
    failing = [(name, value) for name, value in checks.items() if value not in ("ok", "skipped")]
    reason = None
    if failing:
        name, value = failing[0]
        reason = "draining" if name == "accepting_calls" else f"{name}: {value}"
    return Readiness(ready=not failing, node=NODE_ID, checks=checks, reason=reason, models=state)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def _redis() -> str:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "skipped"  # embedded mode: in-memory channel layer, no Redis to reach
    import redis

    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        client.ping()
    except Exception as exc:
        return type(exc).__name__
    finally:
        client.close()
    return "ok"
