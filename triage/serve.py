"""The web process: ``python -m triage.serve [daphne options] config.asgi:application``.

daphne's own command line (every daphne option works the same), with what it lacks for
facing clients directly:

* its access log redacts patient tokens (``WSCONNECT /ws/patient/[redacted]/``; it writes to
  a stream, not through logging, so the LOGGING filter cannot reach it);
* a connection that sends nothing for ``TRIAGE_HTTP_IDLE_TIMEOUT`` seconds (default 30) while
  its request is incomplete, or between keep-alive requests, is closed: a half-sent request
  no longer holds a connection for Twisted's default of 12 hours. An upgraded WebSocket is not
  affected (Twisted stops this timer once a request is complete); daphne's
  ``--websocket_connect_timeout`` bounds its handshake and ``--http-timeout`` the
  application's response (deploy/README.md).
"""

from __future__ import annotations

import os
import sys

from daphne import cli, server
from daphne.http_protocol import HTTPFactory

from triage.redact import RedactingAccessLog

IDLE_TIMEOUT_SECONDS = float(os.environ.get("TRIAGE_HTTP_IDLE_TIMEOUT", "30"))


class IdleTimeoutHTTPFactory(HTTPFactory):
    def __init__(self, daphne_server):
        super().__init__(daphne_server)
        self.timeOut = IDLE_TIMEOUT_SECONDS  # read by each connection (twisted TimeoutMixin)


def main(argv: list[str] | None = None) -> None:
    # daphne builds both from module globals and has no option for either: swap them in this
    # process (the only one that runs this entry point) before it starts.
    server.HTTPFactory = IdleTimeoutHTTPFactory
    cli.AccessLogGenerator = RedactingAccessLog
    cli.CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
