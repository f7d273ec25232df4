"""Escalation notifications against a real SMTP server (aiosmtpd) and a real HTTP server on loopback."""

import hashlib
import hmac

import pytest

from tests.triage.clinician_support import WebhookServer
from triage import notifications, services
from triage.models import AuditEvent, NotificationDelivery, OutboxMessage
from voice import events as ev

pytestmark = pytest.mark.django_db

REASONS = (
    {"rule_id": "chest_pain_cardiac", "label": "Cardiac chest pain", "matched": "crushing chest pain"},
)


@pytest.fixture
def webhook():
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def channels(settings, smtp, webhook):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = False
    settings.TRIAGE = {
        **settings.TRIAGE,
        "ESCALATION_EMAILS": ["oncall@example.org", "lead@example.org"],
        "ESCALATION_WEBHOOK_URL": webhook.url,
        "ESCALATION_WEBHOOK_SECRET": "s3cret",
        "NOTIFY_TIMEOUT_SECONDS": 3,
    }
    return settings


def raise_alert():
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    event = ev.EscalationRaised(2, 1, "call_emergency_services", ("chest_pain_cardiac",), REASONS,
                                "Call emergency services now.", True, 1.0)  # fmt: skip
    alert = services.record_escalation(session.pk, event)
    messages = {m.payload["channel"]: m.pk for m in OutboxMessage.objects.filter(topic__startswith="notify.")}
    return alert, messages


def test_email_and_webhook_are_sent_once_each(channels, smtp, webhook):
    alert, messages = raise_alert()
    assert notifications.deliver(messages["email"], final_attempt=False).status == "sent"
    assert notifications.deliver(messages["webhook"], final_attempt=False).status == "sent"
    # Redelivered tasks (broker redelivery, sweep) change nothing.
    assert notifications.deliver(messages["email"], final_attempt=False).status == "duplicate"
    assert notifications.deliver(messages["webhook"], final_attempt=False).status == "duplicate"

    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert sorted(mail["to"]) == ["lead@example.org", "oncall@example.org"]
    assert "Level 1 escalation" in mail["data"] and f"triage-alert-{alert.pk}@" in mail["data"]
    assert "crushing" not in mail["data"], "the patient's words stay out of email"

    assert len(webhook.requests) == 1
    request = webhook.requests[0]
    assert request["body"]["alert_id"] == alert.pk and request["body"]["level"] == 1
    assert request["body"]["rule_ids"] == ["chest_pain_cardiac"]
    assert request["headers"]["Idempotency-Key"] == f"triage-alert-{alert.pk}"
    expected = hmac.new(b"s3cret", request["raw"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Triage-Signature"] == f"sha256={expected}"

    deliveries = {d.channel: d for d in NotificationDelivery.objects.filter(alert=alert)}
    assert {c: d.status for c, d in deliveries.items()} == {"email": "sent", "webhook": "sent"}
    assert deliveries["webhook"].response_code == 200
    assert AuditEvent.objects.filter(session=alert.session, kind="notification_sent").count() == 2
    assert OutboxMessage.objects.filter(processed_at__isnull=True).count() == 0


def test_failure_is_recorded_for_retry_then_failed_on_the_last_attempt(channels, webhook):
    webhook.fail_first = 100
    alert, messages = raise_alert()
    outcome = notifications.deliver(messages["webhook"], final_attempt=False)
    assert outcome.status == "retry" and "503" in str(outcome.error)
    delivery = NotificationDelivery.objects.get(alert=alert, channel="webhook")
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert OutboxMessage.objects.get(pk=messages["webhook"]).processed_at is None  # still owed

    outcome = notifications.deliver(messages["webhook"], final_attempt=True)
    assert outcome.status == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert AuditEvent.objects.filter(session=alert.session, kind="notification_failed").exists()
    assert OutboxMessage.objects.get(pk=messages["webhook"]).processed_at is not None


def test_unconfigured_channels_are_skipped(settings):
    settings.TRIAGE = {**settings.TRIAGE, "ESCALATION_EMAILS": [], "ESCALATION_WEBHOOK_URL": ""}
    alert, messages = raise_alert()
    assert notifications.deliver(messages["email"], final_attempt=False).status == "skipped"
    assert notifications.deliver(messages["webhook"], final_attempt=False).status == "skipped"
    assert set(NotificationDelivery.objects.filter(alert=alert).values_list("status", flat=True)) == {
        "skipped"
    }


def test_smtp_down_is_a_retry_not_a_loss(channels, smtp):
    smtp.stop()
    alert, messages = raise_alert()
    outcome = notifications.deliver(messages["email"], final_attempt=False)
    assert outcome.status == "retry"
    smtp.start()
    assert notifications.deliver(messages["email"], final_attempt=False).status == "sent"
    assert len(smtp.messages) == 1
    assert NotificationDelivery.objects.get(alert=alert, channel="email").attempts == 2
