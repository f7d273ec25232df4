"""Callback number (issue 13 part 4): validated on intake, stored on the session, audited masked,
never logged, shown to clinicians as a tel: link, kept out of email and webhooks, and a dropped
call during an escalation flagged "call back" on the dashboard."""

import json
import logging

import pytest
from django.test import Client

from tests.triage.clinician_support import make_clinician
from triage import callback, notifications, services
from triage.dashboard import selectors
from triage.models import AuditEvent, TriageSession
from voice import events as ev

pytestmark = pytest.mark.django_db

REASONS = (
    {"rule_id": "chest_pain_cardiac", "label": "Cardiac chest pain", "matched": "crushing chest pain"},
)


def post(client, body):
    return client.post("/api/sessions", data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("(555) 010-4477", "5550104477"),
        ("  0612.345.678 ", "0612345678"),
        ("", ""),
        (None, ""),
    ],
)
def test_numbers_people_type_are_normalised(raw, stored):
    assert callback.normalise(raw) == stored


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("12345", "7 to 15 digits; this one has 5"),
        ("+1234567890123456", "this one has 16"),
        ("call me 555 0100", "Use only digits"),
        ("55+5 0100 222", "Use only digits"),
        (5550104477, "must be text"),
        ("1" * 40, "Use only digits"),
    ],
)
def test_what_is_not_a_phone_number_gets_a_clear_error(raw, says):
    with pytest.raises(callback.InvalidCallbackNumber, match=says):
        callback.normalise(raw)


def test_intake_stores_the_number_audits_it_masked_and_never_logs_it(client, caplog):
    caplog.set_level(logging.DEBUG)
    response = post(client, {"consent": True, "callback_number": "+44 20 7946 0958"})
    assert response.status_code == 201
    session = TriageSession.objects.get(pk=response.json()["session_id"])
    assert session.callback_number == "+442079460958"
    event = AuditEvent.objects.get(session=session, kind="callback_number_set")
    assert event.actor == "patient" and event.payload == {"number": "…958"}
    chain = json.dumps([e.payload for e in AuditEvent.objects.filter(session=session)])
    assert "7946" not in chain, "the audit trail says a number was given, not the number"
    assert not [r for r in caplog.records if "7946" in r.getMessage()]


def test_a_bad_number_is_refused_and_no_session_is_created(client):
    response = post(client, {"consent": True, "callback_number": "12-34"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_field" and body["field"] == "callback_number"
    assert "7 to 15 digits" in body["message"]
    assert TriageSession.objects.count() == 0


def test_no_number_is_fine_and_not_audited(client):
    response = post(client, {"consent": True})
    session = TriageSession.objects.get(pk=response.json()["session_id"])
    assert session.callback_number == ""
    assert not AuditEvent.objects.filter(session=session, kind="callback_number_set").exists()


def _session(number="+15550104477"):
    session, _ = services.create_session(
        subject="self", age_band="18_to_64", pregnant=None, consent=True, callback_number=number
    )
    return session


def _escalate(session):
    event = ev.EscalationRaised(2, 1, "call_emergency_services", ("chest_pain_cardiac",), REASONS,
                                "Call emergency services now.", False, 1.0)  # fmt: skip
    return services.record_escalation(session.pk, event)


def _end(session, cause):
    services.record_state_change(
        session.pk, ev.StateChanged("escalated", "ended", cause, 3, 2.0), session.created_at
    )


def test_dashboard_row_shows_the_number_as_a_tel_link():
    session = _session()
    row = selectors.fetch_row(session.pk)
    assert row["callback_number"] == "+15550104477" and row["callback_tel"] == "tel:+15550104477"
    assert row["call_back"] is False, "an open call needs no call-back"
    assert selectors.fetch_row(_session("").pk)["callback_tel"] is None


def test_a_call_dropped_during_an_escalation_stays_on_the_dashboard_as_call_back():
    user = make_clinician("nurse_dee")
    dropped = _session()
    alert = _escalate(dropped)
    from triage.dashboard import services as dashboard_services

    dashboard_services.acknowledge_alert(alert.pk, user)  # acknowledged: no open alert keeps it listed
    _end(dropped, "connection_lost")
    finished = _session()
    _escalate(finished)
    _end(finished, "patient_ended")
    calm = _session()
    _end(calm, "connection_lost")  # dropped but never escalated

    stored = TriageSession.objects.get(pk=dropped.pk)
    assert stored.status == "ended" and stored.end_reason == "connection_lost"
    listed = {r["id"]: r for r in selectors.active_rows()}
    assert listed[str(dropped.pk)]["call_back"] is True
    assert str(calm.pk) not in listed
    assert selectors.fetch_row(finished.pk)["call_back"] is False, "the patient ended it: no call-back flag"
    assert not listed.get(str(finished.pk), {}).get("call_back")

    client = Client()
    client.force_login(user)
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "tel:+15550104477" in page.content.decode()


def test_review_page_shows_the_tel_link():
    user = make_clinician("nurse_eve")
    session = _session()
    client = Client()
    client.force_login(user)
    page = client.get(f"/review/{session.pk}/").content.decode()
    assert 'href="tel:+15550104477"' in page


def test_email_and_webhook_say_a_number_is_on_file_but_not_the_number():
    alert = _escalate(_session())
    mail = notifications.email_message(alert, ["oncall@example.org"]).message().as_string()
    assert "Callback number on file: yes" in mail and "0104477" not in mail
    body = json.loads(notifications.webhook_body(alert))
    assert body["callback_on_file"] is True and "0104477" not in json.dumps(body)
    without = _escalate(_session(""))
    assert "Callback number on file: no" in notifications.email_message(without, ["x@example.org"]).body
