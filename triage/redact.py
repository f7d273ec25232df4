"""Keep patient tokens out of logs.

A patient token in a URL (``/ws/patient/<token>/``) opens the call for hours, so nothing that
writes a log may carry one: :class:`RedactingFilter` sits on the console handler (settings
LOGGING: every record that reaches it, from any logger: Django, channels' runserver,
daphne, ours) and :class:`RedactingAccessLog` replaces daphne's access log, which writes to
a stream without the logging module (``triage.serve``).
"""

from __future__ import annotations

import logging
import re

from daphne.access import AccessLogGenerator

REDACTED = "[redacted]"
_PATTERNS = (
    # the patient socket's path, with or without its leading slash, however it is quoted or
    # followed (/, ?, space, end)
    re.compile(r"(\bws/patient/)[^/\s?#\"']+"),
    # a token in a query string or a JSON/dict field
    re.compile(r"""(\btoken["']?\s*[:=]\s*["']?)[A-Za-z0-9_\-]{8,}"""),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its traceback text) with tokens redacted; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RedactingAccessLog(AccessLogGenerator):
    """daphne's NCSA-style access log with the paths redacted."""

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        super().write_entry(host, date, redact(str(request)), status, length, ident, user)
