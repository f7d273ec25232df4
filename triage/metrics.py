"""Prometheus metrics (prometheus-client) and the ``/metrics`` endpoint. See docs/metrics.md.

Pipeline metrics are observed in the process that runs the call (daphne), notification and
drop-off counters in Celery. With ``PROMETHEUS_MULTIPROC_DIR`` set (one directory shared by
every process of a host, emptied at start), the endpoint aggregates all of them; without it,
it shows the serving process's own figures. Gauges that describe stored state (open
sessions, open alerts, undelivered outbox messages) are read from the database at scrape time.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from voice import events as ev

# Latency buckets in seconds: dense around the sub-second budgets that matter for voice.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)

RESPONSE_ONSET = Histogram(
    "triage_response_onset_seconds",
    "End of the patient's speech to the first agent audio byte sent.",
    buckets=LATENCY_BUCKETS,
)
ANSWER_ONSET = Histogram(
    "triage_answer_onset_seconds",
    "End of the patient's speech to the first audio of the clause carrying the question/disposition.",
    buckets=LATENCY_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "triage_stage_seconds",
    "Duration of each pipeline stage per turn (voice.telemetry.STAGES).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
ALERT_DELIVERY = Histogram(
    "triage_alert_delivery_seconds",
    "EscalationRaised in the pipeline to the alert written to a clinician dashboard socket.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
ESCALATIONS = Counter("triage_escalations_total", "Escalations raised by the rules.", ["level", "on_partial"])
INTERRUPTIONS = Counter(
    "triage_interruptions_total", "Barge-ins: the patient spoke over the agent and it stopped."
)
BUDGET_MISSES = Counter("triage_budget_misses_total", "Stage latencies over their budget.", ["stage"])
PIPELINE_ERRORS = Counter(
    "triage_pipeline_errors_total", "Errors reported by the voice pipeline.", ["component", "code"]
)
AGENT_REPLIES = Counter("triage_agent_replies_total", "Finished agent replies.", ["fallback"])
NOTIFICATIONS = Counter(
    "triage_notifications_total", "Escalation notification attempts.", ["channel", "outcome"]
)
DROPOFFS = Counter("triage_dropoffs_total", "Sessions closed as abandoned by Celery beat.")
CLINICIAN_ACTIONS = Counter("triage_clinician_actions_total", "Clinician actions on the dashboard.", ["kind"])
ADMISSIONS = Counter(
    "triage_admissions_total",
    "New calls at a web process: immediate (a free slot), queued (over the cap), admitted (from "
    "the line), left (hung up or sent elsewhere while waiting).",
    ["outcome"],
)
QUEUE_WAIT = Histogram(
    "triage_queue_wait_seconds",
    "Time a caller waited in the line before a slot freed.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200),
)

_COMPONENTS = ("asr", "llm", "tts", "vad")


def component_of(stage: str) -> str:
    """Map a pipeline stage name to asr / llm / tts / vad / other for the error counter."""
    lowered = stage.lower()
    for name in _COMPONENTS:
        if name in lowered:
            return name
    return "other"


def observe(event: ev.VoiceEvent) -> None:
    """Count one pipeline event. Cheap and synchronous: called on the call's event path."""
    match event:
        case ev.TurnMetrics():
            for stage, ms in event.stages.items():
                if ms is not None:
                    STAGE_SECONDS.labels(stage=stage).observe(ms / 1000.0)
            if event.response_onset_ms is not None:
                RESPONSE_ONSET.observe(event.response_onset_ms / 1000.0)
            if event.answer_onset_ms is not None:
                ANSWER_ONSET.observe(event.answer_onset_ms / 1000.0)
        case ev.BudgetMissed():
            BUDGET_MISSES.labels(stage=event.stage).inc()
        case ev.EscalationRaised():
            ESCALATIONS.labels(level=str(event.level), on_partial=str(event.on_partial).lower()).inc()
        case ev.AgentInterrupted() if not event.by_host:
            INTERRUPTIONS.inc()
        case ev.AgentReplyFinished():
            AGENT_REPLIES.labels(fallback=str(event.fallback_used).lower()).inc()
        case ev.PipelineError():
            PIPELINE_ERRORS.labels(component=component_of(event.stage), code=event.code[:64]).inc()


class StoredStateCollector:
    """Gauges read from the database at scrape time (same answer from any process)."""

    def describe(self):
        return []  # no DB access at registration

    def collect(self):
        from .models import EscalationAlert, OutboxMessage, TriageSession

        sessions = GaugeMetricFamily(
            "triage_sessions_open", "Sessions not yet ended, by status.", labels=["status"]
        )
        open_statuses = [
            TriageSession.Status.ACTIVE,
            TriageSession.Status.ESCALATED,
            TriageSession.Status.CLINICIAN,
        ]
        for status in open_statuses:
            sessions.add_metric([status.value], TriageSession.objects.filter(status=status).count())
        yield sessions
        yield GaugeMetricFamily(
            "triage_alerts_open",
            "Escalation alerts not yet acknowledged.",
            value=EscalationAlert.objects.filter(status=EscalationAlert.Status.OPEN).count(),
        )
        yield GaugeMetricFamily(
            "triage_outbox_pending",
            "Outbox messages not yet handled by a task.",
            value=OutboxMessage.objects.filter(processed_at__isnull=True).count(),
        )
        waiting = _callers_waiting()
        if waiting is not None:
            yield GaugeMetricFamily(
                "triage_calls_waiting", "Callers in the waiting line, every node.", value=waiting
            )


def _callers_waiting() -> int | None:
    """Entries in the shared waiting line (triage/admission/queue.py); None without Redis or
    when it does not answer (the series is then absent rather than wrong)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    import redis

    from .admission.queue import ENTRY_PREFIX, QUEUE_KEY

    try:
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            members = client.zrange(QUEUE_KEY, 0, -1)
            # Only live entries: one whose node died stays in the set until a waiter reads it.
            return sum(bool(client.exists(ENTRY_PREFIX + m.decode())) for m in members)
        finally:
            client.close()
    except redis.RedisError:
        return None


def exposition() -> bytes:
    stored = CollectorRegistry()
    stored.register(StoredStateCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    return process_metrics + generate_latest(stored)


def _token_ok(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return (
        bool(token)
        and header.startswith("Bearer ")
        and hmac.compare_digest(header[7:].encode(), token.encode())
    )


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: a bearer token (``METRICS_TOKEN``) or a staff login."""
    user = getattr(request, "user", None)
    if not (_token_ok(request) or (user is not None and user.is_authenticated and user.is_staff)):
        if user is not None and user.is_authenticated:
            return HttpResponse("Staff only.\n", status=403, content_type="text/plain")
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
