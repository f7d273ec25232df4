"""The intake page's optional callback number in real headless Chromium (no voice models: a bad
number stops the start before any microphone, socket or session)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import IntakePage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_bad_callback_number_is_explained_and_nothing_starts(daphne_server, chromium):
    page = chromium().new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(
        "window.__micRequests = 0; const o = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);"
        " navigator.mediaDevices.getUserMedia = (c) => { window.__micRequests += 1; return o(c); };"
    )
    intake = IntakePage(page, daphne_server.base_url)
    intake.open()
    intake.consent()
    field = page.get_by_label("Phone number a nurse can call you back on (optional)")
    assert field.get_attribute("type") == "tel" and field.get_attribute("autocomplete") == "tel"

    field.fill("12-34")
    page.get_by_role("button", name="Start the call").click()
    error = page.locator("#callback-error")
    assert error.is_visible() and "7 to 15 digits" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "callback_number"
    assert page.evaluate("window.__micRequests") == 0
    assert not any("/api/sessions" in url for url in intake.requests)
    assert page.locator("#step-details").is_visible() and not page.locator("#step-call").is_visible()

    field.fill("call me")
    page.get_by_role("button", name="Start the call").click()
    assert "Use only digits" in error.inner_text()
    assert not [c for c in intake.console if c.startswith(("error", "pageerror"))], intake.console
