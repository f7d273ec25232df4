"""All lines busy, in real headless Chromium: a server with a cap of one call (admission
control, triage/admission/), real models (the rules' words only), the PostgreSQL test database.
A second caller's page shows the fixed busy message with their place and the emergency advice,
plays it, and joins the call by itself when the first caller hangs up."""

from __future__ import annotations

import pytest

from tests.browser.conftest import IntakePage
from tests.browser.harness import Daphne, database_url, microphone_wav

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def one_line_server(django_db_setup, django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("The browser tests need PostgreSQL (DATABASE_URL=postgres://...).")
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "DJANGO_ENV": "development",
        "TRIAGE_PRELOAD_MODELS": "1",
        "VOICE_LLM_BACKEND": "none",
        "TRIAGE_MAX_CALLS": "1",
        "TRIAGE_NODE_ID": "one-line",
    }
    server = Daphne(env, "one-line-daphne.log")
    try:
        server.wait_ready(timeout=600, path="/readyz")
        yield server
    finally:
        server.stop()


def start(browser, base_url: str) -> IntakePage:
    page = IntakePage(browser.new_page(viewport={"width": 1280, "height": 900}), base_url)
    page.open()
    page.consent()
    page.details(subject="self", age_band="18_to_64", pregnant="false")
    page.start()
    return page


def test_the_second_caller_sees_and_hears_all_lines_busy_then_is_connected(
    one_line_server, chromium, artifacts
):
    browser = chromium(microphone_wav(artifacts / "queue-silence.wav", tail_ms=60000))
    first = start(browser, one_line_server.base_url)
    first.wait_for("window.triage.connection && window.triage.connection.ready", timeout=120_000)

    second = start(browser, one_line_server.base_url)
    second.page.wait_for_selector("#queue-notice:not([hidden])", timeout=60_000)
    notice = second.page.locator("#queue-notice").inner_text()
    assert "All our lines are busy right now. You are number 1 in the queue" in notice
    assert "If this is a life-threatening emergency, hang up and call 911 now." in notice
    assert second.page.locator("#state-label").inner_text() == "Waiting for a line"
    assert not second.page.evaluate("window.triage.connection.ready")
    # Heard, not only shown: the busy message's audio plays on the page's speaker.
    second.wait_for("window.triage.stats.playedFrames > 16000", timeout=60_000)
    second.screenshot("queue-01-all-lines-busy")

    first.end_call()
    second.wait_for("window.triage.connection.ready", timeout=60_000)
    assert second.page.locator("#queue-notice").is_hidden()
    second.wait_for("window.triage.metrics.responses.some(r => r.kind === 'greeting')", timeout=60_000)
    second.screenshot("queue-02-connected")
    second.end_call()
    assert not [c for c in second.console if c.startswith(("error", "pageerror"))], second.console
