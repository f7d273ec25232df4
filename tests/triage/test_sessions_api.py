import json

import pytest

from triage.models import AuditEvent, TriageSession, hash_token

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/sessions", data=json.dumps(body), content_type="application/json")


def test_create_session_returns_an_unguessable_token_stored_only_as_a_hash(client):
    response = post(client, {"consent": True, "subject": "child", "age_band": "2_to_11"})
    assert response.status_code == 201
    data = response.json()
    token = data["token"]
    assert len(token) >= 40
    session = TriageSession.objects.get(pk=data["session_id"])
    assert session.token_hash == hash_token(token) and token not in session.token_hash
    assert session.subject == "child" and session.consent_at is not None
    assert TriageSession.for_token(token) == session
    assert AuditEvent.objects.filter(session=session, kind="session_created").exists()


def test_consent_is_required(client):
    response = post(client, {"subject": "self"})
    assert response.status_code == 400 and response.json()["error"] == "consent_required"
    assert TriageSession.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"consent": True, "subject": "dog"},
        {"consent": True, "age_band": "x"},
        {"consent": True, "pregnant": "maybe"},
    ],
)
def test_bad_fields_are_refused_clearly(client, body):
    response = post(client, body)
    assert response.status_code == 400 and response.json()["error"] == "bad_field"


def test_bad_json(client):
    response = client.post("/api/sessions", data="{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "bad_json"


def test_expired_or_unknown_tokens_open_nothing(client):
    data = post(client, {"consent": True}).json()
    TriageSession.objects.filter(pk=data["session_id"]).update(token_expires_at="2000-01-01T00:00:00Z")
    assert TriageSession.for_token(data["token"]) is None
    assert TriageSession.for_token("not-a-token") is None
    assert TriageSession.for_token("") is None


def test_health(client):
    assert client.get("/healthz").json()["status"] == "ok"
