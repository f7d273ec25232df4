"""The clinician-attention flag of an affect tag (docs/affect.md) in a real dashboard: an open
call's row gets the "Attention: ..." badge live, with the values that fired the tag in its
tooltip, and the urgency beside it unchanged. Real Chromium, real daphne, the test database, the
real Redis channel layer (the test process stores the reading and signals the dashboards as the
call's writer does)."""

from __future__ import annotations

import time

import pytest

from tests.browser.harness import serve_test_database
from triage import services
from triage.models import TriageSession

PASSWORD = "browser-attention-passphrase-1"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with serve_test_database("daphne-attention.log", preload_models=False) as daphne:  # no call is made
        yield daphne


@pytest.fixture
def open_call(server):
    """Created before Chromium starts (Playwright's sync API runs an event loop in this thread)."""
    from tests.triage.clinician_support import make_clinician
    from tests.triage.test_affect_attention import breathless_event

    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    TriageSession.objects.filter(pk=session.pk).update(urgency_level=4, disposition="primary_care_days")
    user = make_clinician("nurse_attention")
    user.set_password(PASSWORD)
    user.save()
    return session, user, breathless_event()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_attention_badge_appears_live_on_the_row(server, open_call, chromium):
    from concurrent.futures import ThreadPoolExecutor

    session, user, event = open_call
    page = chromium().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.base_url + "/accounts/login/?next=/dashboard/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/")
    row = page.locator(f'tr[data-session="{session.pk}"]')
    row.wait_for(timeout=30_000)
    assert row.locator(".attention").count() == 0

    def store_and_signal():  # in its own thread: Playwright's loop runs in this one
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer
        from django.db import connection

        from triage import affect as affect_host

        try:
            affect_host.record(session.pk, event, event.turn_id)
        finally:
            connection.close()
        async_to_sync(get_channel_layer().group_send)(
            "dashboard", {"type": "session.changed", "session_id": str(session.pk), "event": "AffectObserved"}
        )

    t0 = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(store_and_signal).result()
    badge = row.locator(".attention")
    badge.wait_for(timeout=15_000)
    shown_s = time.monotonic() - t0
    assert badge.inner_text().startswith("Attention: Breathless speech pattern")
    assert "words_per_phrase" in badge.get_attribute("title")
    assert row.locator(".urgency.urgency-4").count() == 1  # the level is still the rules' own
    assert errors == [] and shown_s < 15
