"""Fail fast (not skip) when the services the test suite needs are unreachable."""

import os
import socket
import sys
from urllib.parse import urlparse


def reachable(url: str, default_port: int) -> tuple[bool, str]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return True, f"{host}:{port}"
    except OSError as exc:
        return False, f"{host}:{port} ({exc})"


def main() -> int:
    problems = []
    db = os.environ.get("DATABASE_URL", "")
    redis = os.environ.get("REDIS_URL", "")
    if not db.startswith("postgres"):
        problems.append(f"DATABASE_URL must point at PostgreSQL for the test suite (got {db!r}).")
    else:
        ok, where = reachable(db, 5432)
        if not ok:
            problems.append(f"PostgreSQL is not reachable at {where}.")
    if not redis:
        problems.append("REDIS_URL must be set for the test suite.")
    else:
        ok, where = reachable(redis, 6379)
        if not ok:
            problems.append(f"Redis is not reachable at {where}.")
    for problem in problems:
        print(f"preflight: {problem}", file=sys.stderr)
    if not problems:
        print("preflight: PostgreSQL and Redis reachable")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
