"""Clinician voice hand-off end to end (issue 13): two real headless Chromium instances with
fake microphones, a patient on the intake page and a clinician on the dashboard, against daphne
running the real voice pipeline and the PostgreSQL test database.

The clinician takes the call over from the dashboard (which opens their microphone), hears the
patient (captions of the patient's words arrive on the talk socket), is heard by the patient
(the patient's playback plays the clinician's reply, the clinician's words are stored as a
clinician turn and shown as captions on the patient's page), the agent stays silent meanwhile,
and speaks again after the hand back. The clinician's talk socket drops once mid-takeover: the
page reconnects within the grace and the call carries on (one clinician reply on the patient's
page, no lost-clinician message).
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.browser.conftest import IntakePage
from tests.browser.harness import ARTIFACTS, microphone_wav
from tests.browser.test_call_e2e import GREETING_MS, LAPTOP, in_thread
from tests.triage.clinician_support import make_clinician
from triage import handoff
from triage.audit import verify_chain
from triage.dashboard.control import TAKE_OVER_TEXT
from triage.models import AuditEvent, TriageSession, Turn

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.django_db(transaction=True)]

PATIENT_FIRST = "My head hurts."
PATIENT_DURING = "It is getting worse and I feel sick."
CLINICIAN_SAYS = "Please go to the emergency department now."


def login_cookie(username: str) -> dict:
    def make():
        user = make_clinician(username)
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return {"name": "sessionid", "value": in_thread(make), "domain": "127.0.0.1", "path": "/"}


def start_patient(chromium, base: str, wav, warm_up: bool = False) -> IntakePage:
    # bypass_csp: the test's own wait_for_function expressions are evaluated as strings, which
    # the pages' Content-Security-Policy (no unsafe-eval) refuses; the pages' code is unchanged.
    page = IntakePage(chromium(wav).new_context(bypass_csp=True, viewport=LAPTOP).new_page(), base)
    page.open()
    page.consent()
    page.details(subject="self", age_band="18_to_64", pregnant="false")
    page.start()
    # The first call of a fresh server loads the voice models (as the warm_server fixture).
    page.wait_for("window.triage.connection && window.triage.connection.ready", timeout=600_000)
    if warm_up:
        page.wait_for("window.triage.metrics.responses.length >= 1", timeout=120_000)
        page.end_call()
    return page


def test_clinician_takes_the_call_by_voice_and_hands_it_back(daphne_server, chromium):
    base = daphne_server.base_url
    patient_wav = microphone_wav(
        ARTIFACTS / "handoff-patient.wav", GREETING_MS, PATIENT_FIRST, 22000, PATIENT_DURING
    )
    start_patient(chromium, base, microphone_wav(ARTIFACTS / "silence.wav", tail_ms=20000), warm_up=True)
    patient = start_patient(chromium, base, patient_wav)
    session_id = patient.triage()["sessionId"]

    clinician_wav = microphone_wav(ARTIFACTS / "handoff-clinician.wav", 1500, CLINICIAN_SAYS)
    context = chromium(clinician_wav).new_context(bypass_csp=True)
    context.grant_permissions(["microphone"], origin=base)
    context.add_cookies([login_cookie("nurse_voice")])
    dashboard = context.new_page()
    console: list[str] = []
    dashboard.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    dashboard.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    dashboard.on("dialog", lambda d: d.accept())  # "Take over this call?"
    dashboard.goto(base + "/dashboard/")
    row = dashboard.locator(f'tr[data-session="{session_id}"]')
    row.wait_for(timeout=30_000)

    # Take over once the patient has spoken and the agent has answered.
    patient.wait_for(
        "[...document.querySelectorAll('#captions .caption-patient')].some(p => /head/i.test(p.textContent))",
        timeout=120_000,
    )
    row.get_by_role("button", name="Take over call").click()
    dashboard.wait_for_function(
        "document.getElementById('listen-status').textContent.startsWith('Talking')", timeout=30_000
    )
    patient.wait_for(f"document.getElementById('clinician-notice').textContent === {TAKE_OVER_TEXT!r}")
    replies_at_take_over = patient.triage()["metrics"]["responses"]

    # A second clinician is refused and told who has the call.
    def second_clinician():
        client = Client()
        client.force_login(make_clinician("dr_second"))
        return client.post(f"/dashboard/sessions/{session_id}/take-over", HTTP_ACCEPT="application/json")

    refused = in_thread(second_clinician)
    assert refused.status_code == 409 and "nurse_voice" in refused.json()["message"]

    # Clinician -> patient: the clinician's reply plays on the patient's page, and their words
    # are transcribed as a clinician turn.
    patient.wait_for("window.triage.metrics.responses.some(r => r.kind === 'clinician')", timeout=30_000)
    dashboard.wait_for_function(
        "[...document.querySelectorAll('#listen-captions .caption-clinician')].some(p => /emergency/i.test(p.textContent))",
        timeout=90_000,
    )
    assert dashboard.evaluate("window.TriageListen.sent.frames") > 50
    # ... and the patient's page shows them as captions, marked as the clinician's words.
    patient.wait_for(
        "[...document.querySelectorAll('#captions .caption-clinician')].some(p => "
        "p.querySelector('.who').textContent === 'Clinician:' && /emergency/i.test(p.textContent))",
        timeout=30_000,
    )
    # A live voice: the patient's page never holds more than 100 ms ahead of the clinician's
    # audio (LIVE_VOICE_MAX_MS), so it cannot fall behind for the rest of the call.
    rate = patient.page.evaluate("window.triage.outputRate")
    backlog = []
    for _ in range(10):
        backlog.append(patient.page.evaluate("window.triage.stats.bufferedFrames"))
        patient.page.wait_for_timeout(200)
    assert rate and max(backlog) <= 0.1 * rate, (backlog, rate)
    # Patient -> clinician: the patient's words during the hand-off reach the clinician.
    dashboard.wait_for_function(
        "[...document.querySelectorAll('#listen-captions .caption-patient')].some(p => /worse/i.test(p.textContent))",
        timeout=120_000,
    )
    assert dashboard.evaluate("window.TriageListen.received.patient") > 16000
    # The clinician's connection drops mid-takeover (no close from the page's side): the page
    # reconnects within the grace and carries on; the patient's page starts no new reply.
    dashboard.evaluate("window.TriageListen.dropForTest()")
    dashboard.wait_for_function("window.TriageListen.reconnects.resumed >= 1", timeout=30_000)
    dashboard.wait_for_function(
        "document.getElementById('listen-status').textContent.startsWith('Talking')", timeout=30_000
    )
    # The agent said nothing meanwhile: every reply the patient's page started since the
    # take-over is the clinician's.
    responses = patient.triage()["metrics"]["responses"]
    since = responses[len(replies_at_take_over) :]
    assert {r["kind"] for r in since} <= {"clinician", "clinician_joining"}, since
    # counted over the whole call: on a loaded machine the clinician's reply can start before the
    # take-over notice has finished playing (when replies_at_take_over is read)
    assert sum(r["kind"] == "clinician" for r in responses) == 1, "one clinician reply, across the reconnect"
    dashboard.screenshot(path=str(ARTIFACTS / "handoff-clinician.png"), full_page=True)

    dashboard.get_by_role("button", name="Hand back to the agent").click()
    patient.wait_for(
        "[...document.querySelectorAll('#captions .caption-agent')].some(p => p.textContent.includes("
        f"{handoff.HAND_BACK_TEXT[:40]!r}))",
        timeout=30_000,
    )
    patient.wait_for("window.triage.metrics.responses.some(r => r.kind === 'hand_back')", timeout=30_000)
    patient.end_call()
    assert not [c for c in console if c.startswith(("error", "pageerror"))], console

    def stored():
        speakers = set(Turn.objects.filter(session_id=session_id).values_list("speaker", flat=True))
        clinician_text = " ".join(
            Turn.objects.filter(session_id=session_id, speaker="clinician").values_list("text", flat=True)
        )
        kinds = list(AuditEvent.objects.filter(session_id=session_id).values_list("kind", flat=True))
        return (
            TriageSession.objects.get(pk=session_id),
            speakers,
            clinician_text,
            kinds,
            verify_chain(session_id),
        )

    session, speakers, clinician_text, kinds, broken = in_thread(stored)
    assert {"patient", "agent", "clinician"} <= speakers
    assert "emergency" in clinician_text.lower()
    for kind in (
        "clinician_took_over",
        "clinician_voice_started",
        "clinician_voice_resumed",
        "clinician_turn",
        "clinician_handed_back",
    ):
        assert kind in kinds, kinds
    assert "clinician_connection_lost" not in kinds
    assert session.taken_over_by_id is None and broken is None
