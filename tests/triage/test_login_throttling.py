"""Login throttling (django-axes) on the clinician and admin logins, with lockouts recorded."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.triage.clinician_support import make_clinician
from triage.models import SecurityEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple-42"
LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def nurse():
    user = make_clinician(is_staff=True)  # staff, so the admin login would accept it too
    user.set_password(PASSWORD)
    user.save()
    return user


def attempt(client: Client, url: str, password: str, ip: str = "203.0.113.7", **extra):
    return client.post(url, {"username": "nurse", "password": password}, REMOTE_ADDR=ip, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_wrong_passwords_lock_the_login_until_the_cool_off(url, nurse, settings):
    client = Client()
    statuses = [attempt(client, url, f"wrong-{i}").status_code for i in range(30)]
    assert statuses[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(statuses[settings.AXES_FAILURE_LIMIT :]) == {429}

    refused = attempt(client, url, PASSWORD)
    assert refused.status_code == 429 and not signed_in(client)
    page = refused.content.decode()
    assert "Sign-in temporarily blocked" in page and "even with the right password" in page

    event = SecurityEvent.objects.get()  # one lockout, however many attempts followed it
    assert (event.kind, event.username, event.ip_address) == ("login_locked_out", "nurse", "203.0.113.7")
    assert event.path == url and event.detail["failure_limit"] == settings.AXES_FAILURE_LIMIT

    # The cool-off has passed (shortened here rather than waited for).
    settings.AXES_COOLOFF_TIME = dt.timedelta(microseconds=1)
    accepted = attempt(client, url, PASSWORD)
    assert accepted.status_code == 302 and signed_in(client)


def test_lockout_is_per_username_and_address_and_ignores_forwarded_for(nurse, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        # A client cannot dodge the count by inventing X-Forwarded-For values: daphne's
        # --proxy-headers has already resolved the real address into REMOTE_ADDR.
        attempt(Client(), "/accounts/login/", f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert attempt(Client(), "/accounts/login/", PASSWORD).status_code == 429

    other_place = Client()
    assert attempt(other_place, "/accounts/login/", PASSWORD, ip="192.0.2.50").status_code == 302
    assert signed_in(other_place)


def test_a_success_resets_the_count(nurse, settings):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "/accounts/login/", f"wrong-{i}")
    assert attempt(client, "/accounts/login/", PASSWORD).status_code == 302
    client.logout()
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "/accounts/login/", f"again-{i}").status_code == 200
    assert attempt(client, "/accounts/login/", PASSWORD).status_code == 302
    assert not SecurityEvent.objects.exists()
    assert get_user_model().objects.get(username="nurse").is_active
