"""Data model: triage sessions, turns, state transitions, alerts, clinician actions,
latency samples and the append-only, hash-chained audit trail."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_patient_token() -> str:
    # 256 bits from the OS CSPRNG; only its hash is stored.
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UrgencyLevel(models.IntegerChoices):
    EMERGENCY_SERVICES = 1, "1 - Emergency services now"
    EMERGENCY_DEPARTMENT = 2, "2 - Emergency department now"
    URGENT_CARE = 3, "3 - Urgent care within hours"
    PRIMARY_CARE = 4, "4 - Primary care within days"
    SELF_CARE = 5, "5 - Self-care"


class TriageSession(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ESCALATED = "escalated", "Escalated"
        CLINICIAN = "clinician", "Clinician joined"
        ENDED = "ended", "Ended"
        ABANDONED = "abandoned", "Abandoned (drop-off)"

    class Subject(models.TextChoices):
        SELF = "self", "Myself"
        CHILD = "child", "My child"
        OTHER = "other", "Someone else"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    state = models.CharField(max_length=24, default="idle", help_text="Current turn state")
    urgency_level = models.PositiveSmallIntegerField(
        choices=UrgencyLevel.choices, null=True, blank=True, db_index=True
    )
    disposition = models.CharField(max_length=64, blank=True)
    ruleset_version = models.CharField(max_length=32, blank=True)
    subject = models.CharField(max_length=8, choices=Subject.choices, default=Subject.SELF)
    age_band = models.CharField(max_length=32, blank=True)
    pregnant = models.BooleanField(null=True, blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    # Optional, given on the intake page (triage/callback.py): patient data, never logged.
    callback_number = models.CharField(max_length=16, blank=True, help_text="+digits or digits")
    protocol_version = models.PositiveSmallIntegerField(default=1)
    latest_partial = models.TextField(blank=True, help_text="Latest partial transcript (live view)")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    # Turn order is assigned when a turn is written to the outbox, before Celery stores the row.
    turn_seq = models.PositiveIntegerField(default=0, editable=False)
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    taken_over_at = models.DateTimeField(null=True, blank=True)
    # Set when a clinician overrides the urgency: the rules' later assessments no longer change it.
    urgency_overridden = models.BooleanField(default=False)
    rules_urgency_level = models.PositiveSmallIntegerField(
        choices=UrgencyLevel.choices,
        null=True,
        blank=True,
        help_text="The rules' latest level (before any override)",
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("view_clinical_dashboard", "Can use the clinician dashboard")]

    def __str__(self) -> str:
        return f"Session {str(self.id)[:8]} ({self.status})"

    @classmethod
    def create_with_token(cls, **fields) -> tuple[TriageSession, str]:
        token = new_patient_token()
        ttl = settings.TRIAGE["SESSION_TOKEN_TTL_SECONDS"]
        session = cls.objects.create(
            token_hash=hash_token(token),
            token_expires_at=timezone.now() + timezone.timedelta(seconds=ttl),
            **fields,
        )
        return session, token

    @classmethod
    def for_token(cls, token: str) -> TriageSession | None:
        """The session a patient token opens, or None (unknown or expired)."""
        if not token or len(token) > 128:
            return None
        session = cls.objects.filter(token_hash=hash_token(token)).first()
        if session is None or session.token_expires_at <= timezone.now():
            return None
        return session

    @property
    def is_open(self) -> bool:
        return self.status not in {self.Status.ENDED, self.Status.ABANDONED}


class Turn(models.Model):
    class Speaker(models.TextChoices):
        PATIENT = "patient", "Patient"
        AGENT = "agent", "Agent"
        CLINICIAN = "clinician", "Clinician"

    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="turns")
    index = models.PositiveIntegerField(help_text="Order within the session")
    speaker = models.CharField(max_length=10, choices=Speaker.choices)
    text = models.TextField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    asr_avg_logprob = models.FloatField(null=True, blank=True)
    asr_no_speech_prob = models.FloatField(null=True, blank=True)
    reply_source = models.CharField(max_length=16, blank=True, help_text="llm / fallback / script / cached")
    interrupted = models.BooleanField(default=False)
    played_ms = models.FloatField(null=True, blank=True)
    pipeline_turn_id = models.PositiveIntegerField(null=True, blank=True, help_text="voice pipeline turn id")
    # A retried recording task carries the same key and never duplicates a turn.
    idempotency_key = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "index"]
        constraints = [models.UniqueConstraint(fields=["session", "index"], name="unique_turn_index")]

    def __str__(self) -> str:
        return f"{self.speaker} turn {self.index}"


class StateTransition(models.Model):
    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="transitions")
    turn_id = models.PositiveIntegerField(default=0)
    from_state = models.CharField(max_length=24)
    to_state = models.CharField(max_length=24)
    cause = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state} -> {self.to_state}"


class EscalationAlert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="alerts")
    level = models.PositiveSmallIntegerField(choices=UrgencyLevel.choices)
    disposition = models.CharField(max_length=64)
    rule_ids = models.JSONField(default=list)
    reasons = models.JSONField(default=list, help_text="Rules that fired and the words that fired them")
    on_partial = models.BooleanField(default=False, help_text="Raised while the patient was still speaking")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Alert {self.pk} level {self.level} ({self.status})"


class ClinicianAction(models.Model):
    class Kind(models.TextChoices):
        ACKNOWLEDGE = "acknowledge", "Acknowledge alert"
        TAKE_OVER = "take_over", "Take over call"
        OVERRIDE_URGENCY = "override_urgency", "Override urgency"
        NOTE = "note", "Note"
        HAND_BACK = "hand_back", "Hand back to the agent"
        CLOSE = "close", "Close call"

    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="clinician_actions")
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    reason = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "at"]

    def __str__(self) -> str:
        return f"{self.kind} by {self.clinician_id}"


class LatencySample(models.Model):
    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="latency_samples")
    turn_id = models.PositiveIntegerField()
    stage = models.CharField(max_length=32, db_index=True)
    duration_ms = models.FloatField()
    budget_ms = models.FloatField(null=True, blank=True)
    budget_missed = models.BooleanField(default=False, db_index=True)
    recorded_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "turn_id", "stage"], name="unique_latency_sample")
        ]

    def __str__(self) -> str:
        return f"{self.stage} {self.duration_ms:.0f} ms"


class AuditTamperError(RuntimeError):
    """Raised when code tries to change or delete an audit row."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditTamperError("Audit events are append-only; update() is refused.")

    def delete(self):
        raise AuditTamperError("Audit events are append-only; delete() is refused.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditTamperError("Audit events are append-only; bulk_update() is refused.")


class AuditEvent(models.Model):
    """One append-only audit record. ``hash`` chains to the previous event of the same session."""

    class Kind(models.TextChoices):
        """Every kind of audit event, defined once: ``append_event`` refuses any other."""

        # the call
        SESSION_CREATED = "session_created"
        CALLBACK_NUMBER_SET = "callback_number_set"
        SOCKET_CONNECTED = "socket_connected"
        SOCKET_RECONNECTED = "socket_reconnected"
        SOCKET_DISCONNECTED = "socket_disconnected"
        CALL_MOVED = "call_moved"
        QUEUED = "queued"
        ADMITTED = "admitted"
        QUEUE_LEFT = "queue_left"
        SESSION_ENDED = "session_ended"
        SESSION_ABANDONED = "session_abandoned"
        # the conversation and the rules
        STATE_TRANSITION = "state_transition"
        PATIENT_TURN = "patient_turn"
        AGENT_TURN = "agent_turn"
        URGENCY_CHANGED = "urgency_changed"
        ESCALATION_RAISED = "escalation_raised"
        SAFETY_NET_ALERT = "safety_net_alert"
        AFFECT_TAGS = "affect_tags"
        AFFECT_BASELINE = "affect_baseline"  # a turn's features joined the caller's baseline
        TURN_METRICS = "turn_metrics"
        BARGE_IN = "barge_in"
        BUDGET_MISSED = "budget_missed"
        ACOUSTIC_ANOMALY = "acoustic_anomaly"
        PIPELINE_ERROR = "pipeline_error"
        # clinicians
        ALERT_ACKNOWLEDGED = "alert_acknowledged"
        CLINICIAN_TOOK_OVER = "clinician_took_over"
        URGENCY_OVERRIDDEN = "urgency_overridden"
        CLINICIAN_TURN = "clinician_turn"
        CLINICIAN_HANDED_BACK = "clinician_handed_back"
        CLINICIAN_CLOSED_CALL = "clinician_closed_call"
        CLINICIAN_CONNECTION_LOST = "clinician_connection_lost"
        CLINICIAN_LISTEN_STARTED = "clinician_listen_started"
        CLINICIAN_LISTEN_ENDED = "clinician_listen_ended"
        CLINICIAN_VOICE_STARTED = "clinician_voice_started"
        CLINICIAN_VOICE_RESUMED = "clinician_voice_resumed"
        CLINICIAN_VOICE_ENDED = "clinician_voice_ended"
        # notifications
        NOTIFICATION_SENT = "notification_sent"
        NOTIFICATION_FAILED = "notification_failed"

    session = models.ForeignKey(TriageSession, on_delete=models.PROTECT, related_name="audit_events")
    seq = models.PositiveIntegerField(help_text="Position in the session's chain, from 1")
    kind = models.CharField(max_length=48, choices=Kind.choices, db_index=True)
    actor = models.CharField(max_length=150, help_text="system, patient, agent, or clinician:<username>")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="unique_audit_seq")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditTamperError("Audit events are append-only; changing one is refused.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditTamperError("Audit events are append-only; deleting one is refused.")


class OutboxMessage(models.Model):
    """Transactional outbox: work for Celery written in the same transaction as the data it
    concerns, so nothing is lost when the broker or a worker is down."""

    topic = models.CharField(max_length=48, db_index=True)
    key = models.CharField(max_length=160, unique=True, help_text="Idempotency key")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Last handed to the broker (or leased until, on retry)",
    )
    processed_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Handled by a task")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.topic} {self.key}"


class NotificationDelivery(models.Model):
    """One escalation notification on one channel: at most one successful send per (alert, channel)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Paging webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (retries exhausted)"
        SKIPPED = "skipped", "Skipped (channel not configured)"

    alert = models.ForeignKey(EscalationAlert, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    target = models.CharField(max_length=500, blank=True, help_text="Recipients or endpoint")
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="unique_alert_channel")]

    def __str__(self) -> str:
        return f"alert {self.alert_id} {self.channel} {self.status}"


class TelemetryAggregate(models.Model):
    """Per time bucket figures computed by Celery beat for the dashboard charts.

    metric: ``stage:<name>`` (n samples, hits = budget misses, p50/p95), ``interruption``
    (n barge-ins, hits = stopped within budget), ``llm_fallback`` (n LLM-phrased replies,
    hits = fallbacks), ``dropoff`` (n sessions ended, hits = abandoned)."""

    bucket_start = models.DateTimeField(db_index=True)
    bucket_seconds = models.PositiveIntegerField()
    metric = models.CharField(max_length=48, db_index=True)
    n = models.PositiveIntegerField(default=0)
    hits = models.PositiveIntegerField(default=0)
    p50_ms = models.FloatField(null=True, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["bucket_start", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_start", "bucket_seconds", "metric"], name="unique_aggregate"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} @ {self.bucket_start:%Y-%m-%d %H:%M}"

    @property
    def rate(self) -> float | None:
        return self.hits / self.n if self.n else None


class SecurityEvent(models.Model):
    """Security events that belong to no call (login lockouts), so outside the per-session
    audit chains. Append-only from the application: the admin shows them read-only."""

    class Kind(models.TextChoices):
        LOGIN_LOCKED_OUT = "login_locked_out", "Login locked out"

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    username = models.CharField(max_length=150, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.username} @ {self.at:%Y-%m-%d %H:%M:%S}"
