"""Fixtures shared by the triage tests."""

import pytest

from tests.triage.clinician_support import SmtpSink


@pytest.fixture
def smtp():
    """A real SMTP server on loopback that keeps every message it receives."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def voice_runtime():
    """The process-wide voice runtime (triage/runtime.py: ASR, Piper, the LLM, the phrase cache),
    loaded once outside any event loop, so a LiveCall with a real VoiceSession starts at once."""
    from triage.runtime import load_runtime_blocking

    runtime = load_runtime_blocking()
    yield runtime
    # Stop the background phrase warm-up before the interpreter exits: a Piper thread still
    # running then aborts the process (C++ terminate) after the tests have passed.
    runtime.close()
    runtime.background_warm_done.wait(60)
