"""Fixtures shared by the triage tests."""

import pytest

from tests.triage.clinician_support import SmtpSink


@pytest.fixture
def smtp():
    """A real SMTP server on loopback that keeps every message it receives."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()
