"""Escalation notifications: email (Django's email backend) and an HTTP paging webhook.

One ``NotificationDelivery`` row per (alert, channel) is the idempotency record: a task that
runs twice (redelivery, a duplicate from the outbox sweep) finds it sent and does nothing.
Both channels carry the alert's level, disposition and rule ids and a link to the dashboard,
never the patient's words (email and pagers are not the place for clinical free text)
nor the callback number (they say only whether one is on file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from . import metrics, outbox
from .audit import append_event
from .models import AuditEvent, EscalationAlert, NotificationDelivery, OutboxMessage, UrgencyLevel

logger = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """A send that may succeed if retried (SMTP or HTTP failure, timeout, non-2xx)."""


@dataclass
class Outcome:
    status: str  # sent / skipped / failed / retry / duplicate
    error: Exception | None = None


def _base_url() -> str:
    return settings.TRIAGE["PUBLIC_BASE_URL"].rstrip("/")


def alert_summary(alert: EscalationAlert) -> dict:
    session_id = str(alert.session_id)
    return {
        "alert_id": alert.pk,
        "session_id": session_id,
        "level": alert.level,
        "level_label": UrgencyLevel(alert.level).label,
        "disposition": alert.disposition,
        "rule_ids": list(alert.rule_ids),
        "on_partial": alert.on_partial,
        "raised_at": alert.created_at.isoformat(),
        "dashboard_url": f"{_base_url()}/dashboard/",
        "review_url": f"{_base_url()}/review/{session_id}/",
        # Whether the patient left a number, never the number: it is on the dashboard (tel: link).
        "callback_on_file": bool(alert.session.callback_number),
    }


def email_message(alert: EscalationAlert, recipients: list[str]) -> EmailMessage:
    info = alert_summary(alert)
    subject = f"[Triage] Level {alert.level} escalation - session {info['session_id'][:8]}"
    body = "\n".join(
        [
            "A triage call was escalated.",
            "",
            f"Urgency: {info['level_label']}",
            f"Disposition: {alert.disposition}",
            f"Rules: {', '.join(info['rule_ids']) or '-'}",
            f"Raised while the patient was speaking: {'yes' if alert.on_partial else 'no'}",
            f"Raised at: {info['raised_at']}",
            f"Callback number on file: {'yes (on the dashboard)' if info['callback_on_file'] else 'no'}",
            "",
            f"Open the live dashboard: {info['dashboard_url']}",
            f"Review the call: {info['review_url']}",
        ]
    )
    # A fixed Message-ID lets mail systems drop a duplicate should a send ever repeat.
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1] or "triage.local"
    return EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        headers={"Message-ID": f"<triage-alert-{alert.pk}@{domain}>", "X-Triage-Alert": str(alert.pk)},
    )


def send_email(alert: EscalationAlert, recipients: list[str]) -> None:
    try:
        sent = email_message(alert, recipients).send(fail_silently=False)
    except Exception as exc:  # smtplib, socket, backend-specific errors
        raise DeliveryError(f"email: {type(exc).__name__}: {exc}") from exc
    if sent != 1:
        raise DeliveryError("email: backend reported no message sent")


def webhook_body(alert: EscalationAlert) -> bytes:
    return json.dumps({"event": "triage.escalation", **alert_summary(alert)}, sort_keys=True).encode("utf-8")


def send_webhook(alert: EscalationAlert, url: str) -> int:
    body = webhook_body(alert)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "triage-voice/1",
        # Receivers can deduplicate on this key; retries of one alert always carry the same one.
        "Idempotency-Key": f"triage-alert-{alert.pk}",
    }
    secret = settings.TRIAGE["ESCALATION_WEBHOOK_SECRET"]
    if secret:
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        headers["X-Triage-Signature"] = f"sha256={digest}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.TRIAGE["NOTIFY_TIMEOUT_SECONDS"]) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc


def _target(channel: str) -> str:
    if channel == NotificationDelivery.Channel.EMAIL:
        return ",".join(settings.TRIAGE["ESCALATION_EMAILS"])
    return settings.TRIAGE["ESCALATION_WEBHOOK_URL"]


def deliver(message_id: int, *, final_attempt: bool) -> Outcome:
    """Send one outbox ``notify.*`` message. The outbox row and the delivery row are locked for
    the send, so two copies of the task cannot both send; a failure is recorded and returned
    as ``retry`` (the task schedules it) or, on the final attempt, ``failed``."""
    outcome = Outcome("duplicate")

    def handle(message: OutboxMessage) -> bool:
        alert = EscalationAlert.objects.select_related("session").get(pk=message.payload["alert_id"])
        channel = message.payload["channel"]
        NotificationDelivery.objects.get_or_create(alert=alert, channel=channel)
        delivery = NotificationDelivery.objects.select_for_update().get(alert=alert, channel=channel)
        if delivery.status != NotificationDelivery.Status.PENDING:
            outcome.status = "duplicate"
            return True
        target = _target(channel)
        delivery.target = target[:500]
        if not target:
            delivery.status = NotificationDelivery.Status.SKIPPED
            delivery.save()
            outcome.status = "skipped"
            metrics.NOTIFICATIONS.labels(channel=channel, outcome="skipped").inc()
            return True
        delivery.attempts += 1
        try:
            if channel == NotificationDelivery.Channel.EMAIL:
                send_email(alert, target.split(","))
            else:
                delivery.response_code = send_webhook(alert, target)
        except DeliveryError as exc:
            delivery.last_error = str(exc)[:2000]
            logger.warning(
                "alert %s %s delivery attempt %s failed: %s", alert.pk, channel, delivery.attempts, exc
            )
            if not final_attempt:
                delivery.save()
                outcome.status, outcome.error = "retry", exc
                metrics.NOTIFICATIONS.labels(channel=channel, outcome="retry").inc()
                return False
            delivery.status = NotificationDelivery.Status.FAILED
            delivery.save()
            append_event(
                alert.session_id,
                AuditEvent.Kind.NOTIFICATION_FAILED,
                {
                    "alert_id": alert.pk,
                    "channel": channel,
                    "attempts": delivery.attempts,
                    "error": delivery.last_error[:200],
                },
            )
            logger.error(
                "alert %s: %s notification failed after %s attempts", alert.pk, channel, delivery.attempts
            )
            outcome.status, outcome.error = "failed", exc
            metrics.NOTIFICATIONS.labels(channel=channel, outcome="failed").inc()
            return True
        delivery.status = NotificationDelivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.last_error = ""
        delivery.save()
        append_event(
            alert.session_id,
            AuditEvent.Kind.NOTIFICATION_SENT,
            {"alert_id": alert.pk, "channel": channel, "attempts": delivery.attempts},
        )
        outcome.status = "sent"
        metrics.NOTIFICATIONS.labels(channel=channel, outcome="sent").inc()
        return True

    result = outbox.process(message_id, handle)
    if result is None:
        return Outcome("duplicate")
    return outcome
