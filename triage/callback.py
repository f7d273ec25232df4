"""The patient's optional callback number: validation, display and when a call needs a call-back.

The number is patient data like the rest of the session: stored on the TriageSession, shown to
clinicians (dashboard row, alert banner, review page) as a ``tel:`` link, never logged, and
kept out of email and paging webhooks (those say only that a number is on file).
"""

from __future__ import annotations

import re

from django.utils import timezone

MIN_DIGITS, MAX_DIGITS = 7, 15  # E.164 allows at most 15 digits; shorter than 7 is no phone number
MAX_INPUT_CHARS = 32
# Digits with the separators people type: spaces, dashes, dots, brackets; "+" only in front.
_ALLOWED = re.compile(r"^\+?[0-9 ().\-]+$")
# An escalated call that ended this way was not finished on purpose: someone should call back.
DROPPED_REASONS = frozenset({"connection_lost", "abandoned"})
CALL_BACK_WINDOW_SECONDS = 6 * 3600  # how long a dropped escalated call stays on the dashboard


class InvalidCallbackNumber(ValueError):
    """A callback number that is not a phone number; the message is shown to the patient."""


def normalise(raw: object) -> str:
    """``""`` for no number, else ``+digits`` or ``digits``. Raises InvalidCallbackNumber."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidCallbackNumber("The callback number must be text, for example +44 20 7946 0958.")
    text = raw.strip()
    if not text:
        return ""
    if len(text) > MAX_INPUT_CHARS or not _ALLOWED.match(text):
        raise InvalidCallbackNumber("Use only digits, spaces and a leading +, for example +44 20 7946 0958.")
    digits = re.sub(r"\D", "", text)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise InvalidCallbackNumber(
            f"A phone number has {MIN_DIGITS} to {MAX_DIGITS} digits; this one has {len(digits)}."
        )
    return ("+" if text.startswith("+") else "") + digits


def tel_href(number: str) -> str | None:
    return f"tel:{number}" if number else None


def masked(number: str) -> str:
    """For the audit trail: enough to tell numbers apart, not the number itself."""
    return f"…{number[-3:]}" if number else ""


def needs_call_back(session, escalated: bool) -> bool:
    """An escalated call with a callback number that dropped (lost connection, abandoned)."""
    return bool(
        session.callback_number
        and escalated
        and not session.is_open
        and session.end_reason in DROPPED_REASONS
    )


def call_back_cutoff():
    return timezone.now() - timezone.timedelta(seconds=CALL_BACK_WINDOW_SECONDS)
