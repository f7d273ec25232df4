"""Fixtures for the browser tests: a real daphne on the test database, and Chromium pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.browser import launch
from tests.browser.harness import ARTIFACTS, microphone_wav, serve_test_database


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker):
    """daphne serving config.asgi against the pytest-django test database (PostgreSQL), so
    rows the server writes are visible to tests marked ``django_db(transaction=True)``."""
    # Generous: with TRIAGE_PRELOAD_MODELS the models may load before the server answers,
    # which takes minutes on a busy 2-core machine.
    with serve_test_database("daphne.log", preload_models=True, timeout=600) as server:
        yield server


@pytest.fixture(scope="session")
def warm_server(daphne_server, artifacts):
    """The first call loads the voice models in the server process; make that call here
    (silent microphone, greeting only) so the tests time a warm server."""
    from playwright.sync_api import sync_playwright

    wav = microphone_wav(artifacts / "silence.wav", tail_ms=20000)
    with sync_playwright() as p:
        browser = launch(p, wav)
        try:
            page = IntakePage(browser.new_page(), daphne_server.base_url)
            page.open()
            page.consent()
            page.start()
            page.wait_for("window.triage.connection && window.triage.connection.ready", timeout=600_000)
            page.wait_for("window.triage.metrics.responses.length >= 1", timeout=120_000)
            page.end_call()
        finally:
            browser.close()
    return daphne_server


class IntakePage:
    """Drives templates/triage/intake.html; reads ``window.triage`` for the assertions."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self) -> None:
        self.page.goto(self.base_url + "/")
        self.wait_for("window.triage !== undefined")

    def consent(self) -> None:
        self.page.get_by_label("I have read this and I agree").check()
        self.page.get_by_role("button", name="Continue").click()
        self.page.wait_for_selector("#step-details:not([hidden])")

    def details(self, subject: str = "self", age_band: str = "", pregnant: str = "") -> None:
        self.page.locator(f'input[name="subject"][value="{subject}"]').check()
        self.page.get_by_label("Age of the person who is unwell").select_option(age_band)
        if self.page.locator("#pregnancy-field").is_visible():
            self.page.locator(f'input[name="pregnant"][value="{pregnant}"]').check()

    def start(self) -> None:
        self.page.get_by_role("button", name="Start the call").click()
        self.page.wait_for_selector("#step-call:not([hidden])", timeout=30_000)

    def wait_for(self, expression: str, timeout: float = 60_000):
        # As a function, not a bare expression: Playwright polls a bare string with eval, which
        # the page's Content-Security-Policy (script-src 'self') rightly refuses.
        return self.page.wait_for_function(f"() => ({expression})", timeout=timeout, polling=50)

    def triage(self) -> dict:
        return self.page.evaluate(
            "JSON.parse(JSON.stringify({state: triage.state, callState: triage.callState, sessionId: triage.sessionId,"
            " stats: triage.stats, metrics: triage.metrics, events: triage.events, escalation: triage.escalation,"
            " resumedCount: triage.resumedCount, micSettings: triage.micSettings,"
            " connection: triage.connection ? triage.connection.stats : null}))"
        )

    def end_call(self) -> None:
        self.page.get_by_role("button", name="End call").click()
        self.page.wait_for_selector("#step-ended:not([hidden])", timeout=30_000)

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def dump(self, name: str) -> None:
        """Save what the page saw (timings, events, console) next to the screenshots."""
        captions = self.page.evaluate(
            "[...document.querySelectorAll('#captions .caption')].map(p => p.textContent)"
        )
        data = {"triage": self.triage(), "captions": captions, "console": self.console}
        (ARTIFACTS / f"{name}.json").write_text(json.dumps(data, indent=2))


@pytest.fixture
def chromium():
    """A function that launches Chromium with a given WAV as microphone; closed afterwards."""
    from playwright.sync_api import sync_playwright

    opened = []
    with sync_playwright() as p:

        def open_browser(wav: Path | None = None):
            browser = launch(p, wav)
            opened.append(browser)
            return browser

        yield open_browser
        for browser in opened:
            browser.close()
