"""Multi-node load test with a node kill (docs/benchmarks.md, "Two nodes and a node kill").

    python -m evals.triage.bench_cluster [--callers 4] [--turns 3] [--alerts 1] [--logs DIR]

Needs DATABASE_URL (PostgreSQL) and REDIS_URL, and Debian's haproxy. Starts the deploy/ layout
on loopback (cluster.py): HAProxy with deploy/haproxy.cfg in front of two daphne processes
(web1, web2, models preloaded) and a Celery worker. N callers (the socket-level benchmark's
client, reconnecting as the browser does: caller.py) stream Piper-spoken speech in real time
through the balancer; once every caller has had its first turn answered, the node holding the
most calls is killed with SIGKILL. Its callers reconnect, wait out the dead node's call leases
and resume on the other node; everyone answers the next questions and hangs up. Then a
red-flag call with a clinician dashboard open (alert delivery), and the checks against
PostgreSQL: every final transcript a caller got is stored exactly once (transcript and audit
chain), and ``manage.py verify_audit`` passes. Prints a table, writes
``bench-results/cluster.json``; exits 1 when a turn was lost or duplicated or an audit chain is
broken. Not a test: timings depend on the machine.
"""

from .runner import main, run

__all__ = ["main", "run"]
