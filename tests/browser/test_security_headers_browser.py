"""The Content-Security-Policy blocks nothing the clinician pages need, in a real Chromium
against a real daphne: the login form, the dashboard's socket, the Chart.js telemetry page,
the review timeline and the admin. The patient page is covered by
test_static_production.py (worklets and the intake API under the same policy)."""

from __future__ import annotations

import pytest

from tests.browser.harness import serve_test_database
from triage import services
from voice import events as ev

PASSWORD = "browser-csp-check-passphrase-1"
WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__csp.push(`${e.effectiveDirective} ${e.blockedURI}`));"
)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with serve_test_database("daphne-csp.log", preload_models=False) as daphne:  # no call is made
        yield daphne


@pytest.fixture
def world(server):
    """Rows to show, created before Chromium starts (Playwright's sync API runs an event loop
    in this thread, where Django refuses synchronous database calls)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from tests.triage.clinician_support import make_clinician

    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    services.record_escalation(
        session.pk,
        ev.EscalationRaised(1, 1, "call_emergency_services", ("x",), ({"rule_id": "x"},), "Call.", True, 1.0),
    )
    # A patient turn with its latency breakdown: the review page draws its bars.
    now = timezone.now()
    services.record_patient_turn(
        session.pk, ev.FinalTranscript(1, "I have chest pain", -0.2, 0.01, 0.0, 1.0, 1.0), now, now
    )
    services.record_turn_metrics(
        session.pk,
        ev.TurnMetrics(
            1, {"asr_final": 120.0, "llm_first_token": 400.0}, 700.0, 900.0, None, False, False, (), 1.0
        ),
        budgets={"asr_final": 300.0},
    )
    user = make_clinician(is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    get_user_model().objects.filter(pk=user.pk).update(is_superuser=True)  # admin pages too
    return session, user


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clinician_pages_work_under_the_policy(server, world, chromium):
    session, user = world
    page = chromium().new_page()
    page.add_init_script(WATCH_CSP)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text} ({m.location.get('url', '')})"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    response = page.goto(server.base_url + "/accounts/login/?next=/dashboard/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/")
    # The socket (connect-src ws:) delivers the snapshot: the row of the escalated call.
    page.wait_for_selector("#connection.connection-live", timeout=30_000)
    page.wait_for_function(f"document.body.textContent.includes('{str(session.pk)[:8]}')", timeout=30_000)
    visited = {"/dashboard/": page.evaluate("window.__csp")}

    page.goto(server.base_url + "/dashboard/telemetry/")
    page.wait_for_function("window.Chart !== undefined", timeout=30_000)
    page.wait_for_timeout(500)  # let the data request and the first draw happen
    visited["/dashboard/telemetry/"] = page.evaluate("window.__csp")

    page.goto(server.base_url + f"/review/{session.pk}/")
    assert page.locator("svg.bar rect").count() >= 2
    visited["/review/"] = page.evaluate("window.__csp")

    page.goto(server.base_url + "/admin/triage/escalationalert/")
    visited["/admin/"] = page.evaluate("window.__csp")

    assert all(v == [] for v in visited.values()), visited
    # The policy is enforced, and the watcher sees it: an injected inline script does not run.
    ran = page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        " document.body.appendChild(s); return window.__ran === true; }"
    )
    page.wait_for_function("window.__csp.length > 0", timeout=5_000)
    assert not ran and page.evaluate("window.__csp")[0].startswith("script-src")
    # That one refusal, and the admin's missing /favicon.ico (the admin has no icon link).
    console = [c for c in console if "Content Security Policy" not in c and not c.endswith("/favicon.ico)")]
    assert not [c for c in console if c.startswith(("error", "pageerror"))], (console, failed)
