"""An open alert stays on the dashboard until a clinician acknowledges it, even when its call
has ended (issue 17 part 2: an alert raised during a Redis outage reaches a dashboard that
reconnects through its snapshot, whether or not the patient is still on the line). Real
Chromium, real daphne, the test database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.browser.harness import serve_test_database
from triage import services
from triage.models import EscalationAlert, TriageSession
from voice import events as ev

PASSWORD = "browser-open-alert-passphrase-1"


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with serve_test_database("daphne-open-alert.log", preload_models=False) as daphne:  # no call is made
        yield daphne


@pytest.fixture
def ended_call_with_open_alert(server):
    """Created before Chromium starts (Playwright's sync API runs an event loop in this thread)."""
    from django.utils import timezone

    from tests.triage.clinician_support import make_clinician

    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    alert = services.record_escalation(
        session.pk,
        ev.EscalationRaised(1, 1, "call_emergency_services", ("x",), ({"rule_id": "x"},), "Call.", True, 1.0),
    )
    TriageSession.objects.filter(pk=session.pk).update(
        status=TriageSession.Status.ENDED, ended_at=timezone.now()
    )
    user = make_clinician("nurse_open_alert")
    user.set_password(PASSWORD)
    user.save()
    return session, alert, user


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_ended_calls_open_alert_is_shown_until_acknowledged(server, ended_call_with_open_alert, chromium):
    session, alert, user = ended_call_with_open_alert
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
    acknowledge = row.get_by_role("button", name="Acknowledge alert")
    assert acknowledge.count() == 1, "the ended call's alert can be acknowledged"
    acknowledge.click()
    # The acknowledgement comes back over the socket: the row loses its button.
    row.locator("button.ack").wait_for(state="detached", timeout=30_000)
    assert errors == []

    def stored_status():  # in its own thread: Playwright's loop runs in this one
        from django.db import connection

        try:
            return EscalationAlert.objects.get(pk=alert.pk).status
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(stored_status).result() == EscalationAlert.Status.ACKNOWLEDGED
