"""Patient tokens never reach a log line: the redaction itself, and the console handler the
settings install (every logger's records pass through it). The daphne access log is tested
on the real served process in test_served.py."""

from __future__ import annotations

import io
import logging
import secrets

import pytest

from triage.redact import REDACTED, RedactingFilter, redact

TOKEN = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"WSCONNECT /ws/patient/{TOKEN}/", f"WSCONNECT /ws/patient/{REDACTED}/"),
        (f"WebSocket HANDSHAKING /ws/patient/{TOKEN}/ [127.0.0.1:4242]", f"WebSocket HANDSHAKING /ws/patient/{REDACTED}/ [127.0.0.1:4242]"),
        (f"No route found for path 'ws/patient/{TOKEN}/x'.", f"No route found for path 'ws/patient/{REDACTED}/x'."),
        (f"GET /ws/patient/{TOKEN}?x=1", f"GET /ws/patient/{REDACTED}?x=1"),
        (f'{{"token": "{TOKEN}", "websocket": "/ws/patient/{TOKEN}/"}}', f'{{"token": "{REDACTED}", "websocket": "/ws/patient/{REDACTED}/"}}'),
        (f"/start?token={TOKEN}&a=b", f"/start?token={REDACTED}&a=b"),
        ("session 1a2b3c4d: ValueError", "session 1a2b3c4d: ValueError"),  # nothing to hide
    ],
)  # fmt: skip
def test_redact(line, expected):
    assert redact(line) == expected


def console_handler() -> logging.Handler:
    handlers = [
        h for h in logging.getLogger().handlers if any(isinstance(f, RedactingFilter) for f in h.filters)
    ]
    assert handlers, "settings.LOGGING puts the redacting filter on the console handler"
    return handlers[0]


@pytest.mark.parametrize(
    "logger_name", ["django.channels.server", "django.request", "daphne.server", "triage.live"]
)
def test_the_console_log_carries_no_token(logger_name):
    handler = console_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        log = logging.getLogger(logger_name)
        log.warning("WebSocket HANDSHAKING /ws/patient/%s/ [127.0.0.1:4242]", TOKEN)
        try:
            raise ValueError(f"No route found for path 'ws/patient/{TOKEN}/extra/'.")
        except ValueError:
            log.exception("Exception inside application")
    finally:
        handler.setStream(previous)
    written = stream.getvalue()
    assert f"/ws/patient/{REDACTED}/" in written and f"ws/patient/{REDACTED}/extra/" in written
    assert TOKEN not in written
