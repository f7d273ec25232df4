"""Socket-level benchmark: the conversation as the caller hears it (docs/benchmarks.md).

    python -m evals.triage.bench_socket [--url http://HOST:PORT] [--quick] [--calls 8] [--hesitant 4]
                                        [--concurrent 4]

Starts daphne on a free loopback port (or targets ``--url``), starts calls through the HTTP
API and the patient WebSocket, streams Piper-spoken callers in real time (realistic run-on
first statements, and hesitant callers who pause at "um" / "er"), models the browser's
playback and its ``playback`` reports, and measures response onset, answer onset,
answer heard, barge-in and red-flag → dashboard alert. Prints a table, writes
``bench-results/socket.json``. Not a test: timings depend on the machine (it waits for a
quiet CPU before each utterance and flags noisy ones).
"""

from .runner import main, run

__all__ = ["main", "run"]
