"""Content-Security-Policy and Permissions-Policy on every page; no-store on everything that
carries patient data or the token; the pages need nothing the policy forbids."""

import json
import re

import pytest
from django.test import Client

from tests.triage.clinician_support import make_admin, make_clinician
from triage import services
from voice import events as ev

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    session, token = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    services.record_escalation(
        session.pk,
        ev.EscalationRaised(1, 1, "call_emergency_services", ("x",), ({"rule_id": "x"},), "Call.", True, 1.0),
    )
    return session, token


def csp(response) -> dict[str, list[str]]:
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_headers(response, *, secure: bool = False) -> None:
    policy = csp(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == (
        ["'self'", "wss://testserver"] if secure else ["'self'", "ws://testserver", "wss://testserver"]
    )
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    permissions = dict(item.split("=", 1) for item in response["Permissions-Policy"].split(", "))
    assert permissions["microphone"] == "(self)"
    assert permissions["camera"] == "()" and permissions["geolocation"] == "()"
    assert "no-store" in response["Cache-Control"]


def pages(session) -> list[str]:
    return [
        "/dashboard/",
        "/dashboard/telemetry/",
        "/review/",
        f"/review/{session.pk}/",
        "/dashboard/api/sessions",
        f"/dashboard/api/sessions/{session.pk}",
        "/dashboard/telemetry/data",
        "/admin/",
        f"/admin/triage/triagesession/{session.pk}/change/",
        "/admin/triage/escalationalert/",
    ]


def assert_no_inline_code(html: str, url: str) -> None:
    """What a strict CSP would block: inline <script> (a JSON data block is not code), style
    attributes, <style>, on* handlers."""
    assert not re.search(r'<script(?![^>]*\b(?:src=|type="application/json"))[^>]*>', html), url
    assert not re.search(r"<style\b", html), url
    assert not re.search(r"\sstyle=", html), url
    assert not re.search(r"\son[a-z]+=", html), url


def test_patient_page_and_intake_api(world):
    client = Client()
    page = client.get("/")
    assert page.status_code == 200
    assert_headers(page)
    assert_no_inline_code(page.content.decode(), "/")

    created = client.post(
        "/api/sessions", json.dumps({"consent": True, "subject": "self"}), content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["token"]
    assert_headers(created)
    # Errors too (no token in them, but the rule is simple: nothing dynamic is stored).
    assert_headers(client.post("/api/sessions", "[", content_type="application/json"))
    assert_headers(client.get("/accounts/login/"))


@pytest.mark.parametrize("who", ["clinician", "admin"])
def test_clinician_pages_and_apis(who, world):
    session, _ = world
    client = Client()
    client.force_login(make_clinician() if who == "clinician" else make_admin())
    for url in pages(session):
        response = client.get(url)
        if who == "clinician" and url.startswith("/admin/"):
            assert response.status_code == 302, url  # not staff: sent to the admin login
        else:
            assert response.status_code == 200, url
        assert_headers(response)
        if response["Content-Type"].startswith("text/html") and not url.startswith("/admin/"):
            assert_no_inline_code(response.content.decode(), url)


def test_policy_names_the_secure_socket_scheme_behind_tls(world, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get("/", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")
    assert_headers(response, secure=True)


def test_static_files_stay_cacheable():
    """Static files are answered by whitenoise before the middleware: no no-store there."""
    response = Client().get("/static/triage/site.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
