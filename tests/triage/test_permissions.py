"""Permission matrix over every clinician page, API, action and socket.

Subjects: anonymous, a patient token (the session's own), another patient's token, a signed-in
user without the clinician permission, a clinician, an admin. A patient token is never a
credential on the clinician side, whether it comes as a query parameter, a bearer header or a
cookie; and one patient's token only ever opens that patient's session.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client

from config.asgi import application
from tests.triage.clinician_support import (
    ORIGIN,
    make_admin,
    make_clinician,
    make_plain_user,
    receive_until,
    ws_headers,
)
from triage import services
from triage.management.commands.ensure_demo_clinician import CLINICIAN_GROUP
from triage.models import AuditEvent, ClinicianAction, TriageSession
from voice import events as ev

# HTTP checks run inside a test transaction; the socket checks need committed rows (the
# consumer reads them from another thread).
pytestmark = pytest.mark.django_db

SUBJECTS = ["anonymous", "patient_token", "other_patient_token", "no_permission", "clinician", "admin"]


@pytest.fixture
def world():
    a, token_a = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    b, token_b = services.create_session(subject="child", age_band="2_to_11", pregnant=None, consent=True)
    alert = services.record_escalation(
        a.pk,
        ev.EscalationRaised(1, 1, "call_emergency_services", ("x",), ({"rule_id": "x"},), "Call.", True, 1.0),
    )
    users = {"no_permission": make_plain_user(), "clinician": make_clinician(), "admin": make_admin()}
    return {"a": a, "token_a": token_a, "b": b, "token_b": token_b, "alert": alert, "users": users}


def client_for(subject: str, world) -> tuple[Client, dict]:
    """A test client and extra request headers that carry the subject's credential."""
    client = Client()
    headers = {}
    if subject in world["users"]:
        client.force_login(world["users"][subject])
    elif subject in ("patient_token", "other_patient_token"):
        token = world["token_a"] if subject == "patient_token" else world["token_b"]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        client.cookies["token"] = token
    return client, headers


def pages(world) -> list[tuple[str, str, bool]]:
    """(method, url, is_api). Every clinician page and API, pointed at patient A's data."""
    a = world["a"].pk
    return [
        ("get", "/dashboard/", False),
        ("get", "/dashboard/telemetry/", False),
        ("get", "/review/", False),
        ("get", f"/review/{a}/", False),
        ("get", "/dashboard/api/sessions", True),
        ("get", f"/dashboard/api/sessions/{a}", True),
        ("get", "/dashboard/telemetry/data", True),
    ]


def actions(world) -> list[tuple[str, dict]]:
    a = world["a"].pk
    return [
        (f"/dashboard/alerts/{world['alert'].pk}/acknowledge", {}),
        (f"/dashboard/sessions/{a}/take-over", {}),
        (f"/dashboard/sessions/{a}/urgency", {"level": 3, "reason": "Seen on video, stable."}),
    ]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_pages_and_apis(subject, world):
    client, headers = client_for(subject, world)
    for method, url, is_api in pages(world):
        for query in ("", f"?token={world['token_a']}"):
            response = getattr(client, method)(url + query, **headers)
            if subject in ("clinician", "admin"):
                assert response.status_code == 200, (subject, url)
            elif subject == "no_permission":
                assert response.status_code == 403, (subject, url)
            elif is_api:
                assert response.status_code == 401, (subject, url)
            else:
                assert response.status_code == 302 and "/accounts/login/" in response["Location"], (
                    subject,
                    url,
                )
            if subject not in ("clinician", "admin"):
                body = response.content.decode(errors="replace")
                assert str(world["a"].pk) not in body and "call_emergency_services" not in body


@pytest.mark.parametrize("subject", SUBJECTS)
def test_actions(subject, world):
    client, headers = client_for(subject, world)
    for url, data in actions(world):
        response = client.post(url, data, HTTP_ACCEPT="application/json", **headers)
        if subject in ("clinician", "admin"):
            assert response.status_code == 200, (subject, url, response.content)
            world["a"].refresh_from_db()
            # Reset what the action changed so the next subject starts from the same state.
            TriageSession.objects.filter(pk=world["a"].pk).update(status="escalated", taken_over_by=None)
            world["alert"].__class__.objects.filter(pk=world["alert"].pk).update(status="open")
        else:
            expected = 403 if subject == "no_permission" else 401
            assert response.status_code == expected, (subject, url)
    if subject not in ("clinician", "admin"):
        world["a"].refresh_from_db()
        assert world["a"].taken_over_by_id is None and world["a"].urgency_level == 1
        assert not world["a"].clinician_actions.exists()


@pytest.mark.parametrize("subject", SUBJECTS)
def test_metrics_endpoint(subject, world, settings):
    settings.METRICS_TOKEN = "scrape-token-123"
    client, headers = client_for(subject, world)
    response = client.get("/metrics", **headers)
    if subject == "admin":  # staff
        assert response.status_code == 200 and b"triage_escalations_total" in response.content
    elif subject in ("no_permission", "clinician"):
        assert response.status_code == 403
    else:
        assert response.status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("subject", SUBJECTS)
async def test_dashboard_socket(subject, world):
    user = world["users"].get(subject)
    extra = []
    path = "/ws/dashboard/"
    if subject in ("patient_token", "other_patient_token"):
        token = world["token_a"] if subject == "patient_token" else world["token_b"]
        path += f"?token={token}"
        extra = [(b"authorization", f"Bearer {token}".encode()), (b"cookie", f"token={token}".encode())]
    headers = await database_sync_to_async(ws_headers)(user, extra)
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected  # accepted so the client can read why it is refused
    first = await communicator.receive_json_from(timeout=10)
    if subject in ("clinician", "admin"):
        assert first["type"] == "snapshot"
        assert str(world["a"].pk) in {row["id"] for row in first["sessions"]}
        await communicator.disconnect()
    else:
        assert first == {"type": "error", "code": "forbidden", "message": "Clinician login required."}
        closed = await communicator.receive_output(timeout=10)
        assert closed == {"type": "websocket.close", "code": 4403}
        # The browser's side of the close. Without it the consumer task was still waiting on
        # the Redis channel layer at loop teardown, and cancelling that receive could hang.
        await communicator.disconnect()


def test_a_patient_token_opens_only_its_own_session(world):
    assert TriageSession.for_token(world["token_a"]).pk == world["a"].pk
    assert TriageSession.for_token(world["token_b"]).pk == world["b"].pk
    assert TriageSession.for_token(world["token_a"][:-1] + "x") is None
    assert TriageSession.for_token(str(world["a"].pk)) is None  # a session id is not a token


# --- an open socket loses access -------------------------------------------------------------


async def logged_in_socket(user) -> tuple[Client, WebsocketCommunicator]:
    """A browser: a login session, and a dashboard socket opened with that session's cookie."""
    client = Client()
    await database_sync_to_async(client.force_login)(user)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=[ORIGIN, cookie])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    assert (await communicator.receive_json_from(timeout=10))["type"] == "snapshot"
    # The waiting line follows every snapshot (triage/admission/, the dashboard's queue panel).
    assert (await communicator.receive_json_from(timeout=10))["type"] == "queue"
    return client, communicator


async def assert_revoked(communicator, reason: str) -> None:
    error = await receive_until(communicator, lambda m: m["type"] == "error", timeout=10)
    assert error["code"] == "access_revoked" and error["reason"] == reason
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()  # the browser's side of the close


def revoke(how: str, user, client: Client) -> None:
    if how == "logout":
        assert client.post("/accounts/logout/").status_code == 302
    elif how == "removed_from_group":
        user.groups.remove(Group.objects.get(name=CLINICIAN_GROUP))
    elif how == "group_cleared":  # from the group's side, as the admin's group page does
        Group.objects.get(name=CLINICIAN_GROUP).user_set.clear()
    elif how == "group_deleted":
        Group.objects.get(name=CLINICIAN_GROUP).delete()
    elif how == "group_lost_permission":
        Group.objects.get(name=CLINICIAN_GROUP).permissions.remove(
            Permission.objects.get(codename="view_clinical_dashboard")
        )
    elif how == "deactivated":
        user.is_active = False
        user.save()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "how, reason, http_status",
    [
        ("logout", "signed_out", 401),
        ("removed_from_group", "permission_removed", 403),
        ("group_cleared", "permission_removed", 403),
        ("group_deleted", "permission_removed", 403),
        ("group_lost_permission", "permission_removed", 403),
        ("deactivated", "signed_out", 401),
    ],
)
async def test_open_socket_is_closed_when_access_is_revoked(how, reason, http_status, world):
    user = world["users"]["clinician"]
    client, communicator = await logged_in_socket(user)
    # The same clinician in another browser: only a logout of *this* session spares it.
    _, elsewhere = await logged_in_socket(user)

    await database_sync_to_async(revoke)(how, user, client)
    await assert_revoked(communicator, reason)
    if how == "logout":
        await elsewhere.send_json_to({"type": "refresh"})
        assert (await elsewhere.receive_json_from(timeout=10))["type"] == "snapshot"
        await elsewhere.disconnect()
    else:
        await assert_revoked(elsewhere, reason)

    # What the stale page can still send is refused, and nothing reaches the audit trail.
    @database_sync_to_async
    def act_and_count():
        before = AuditEvent.objects.filter(session=world["a"]).count()
        codes = [
            client.post(url, data, HTTP_ACCEPT="application/json").status_code for url, data in actions(world)
        ]
        return codes, AuditEvent.objects.filter(session=world["a"]).count() - before

    codes, new_events = await act_and_count()
    assert codes == [http_status] * 3 and new_events == 0
    assert not await database_sync_to_async(ClinicianAction.objects.exists)()


@pytest.mark.django_db(transaction=True)
async def test_every_message_rechecks_access(world):
    """A change that sends no signal (a bulk UPDATE) is caught by the next message."""
    user = world["users"]["clinician"]
    _, communicator = await logged_in_socket(user)
    await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)
    await communicator.send_json_to({"type": "refresh"})
    error = await communicator.receive_json_from(timeout=10)  # no snapshot first
    assert error["type"] == "error" and error["code"] == "access_revoked"
    assert await communicator.receive_output(timeout=10) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_idle_socket_rechecks_access_periodically(world, settings):
    settings.TRIAGE = {**settings.TRIAGE, "DASHBOARD_RECHECK_SECONDS": 0.1}
    user = world["users"]["clinician"]
    _, communicator = await logged_in_socket(user)
    await database_sync_to_async(get_user_model().objects.filter(pk=user.pk).update)(is_active=False)
    await assert_revoked(communicator, "signed_out")
