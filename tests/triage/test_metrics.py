"""Prometheus metrics: what pipeline events count, the DB gauges, multiprocess aggregation."""

import os
import subprocess
import sys

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.triage.clinician_support import REPO
from triage import metrics, services
from voice import events as ev

pytestmark = pytest.mark.django_db


def sample(text: str, name: str, labels: dict | None = None) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                return s.value
    return 0.0


def scrape(settings) -> str:
    settings.METRICS_TOKEN = "t0ken"
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_pipeline_events_are_counted(settings):
    before = scrape(settings)
    metrics.observe(ev.TurnMetrics(1, {"asr_final": 300.0, "llm_first_token": 250.0, "response_onset": 700.0},
                                   700.0, 950.0, 0.9, False, False, ("response_onset",), 1.0))  # fmt: skip
    metrics.observe(ev.BudgetMissed(1, "response_onset", 600.0, 700.0, 1.0))
    metrics.observe(ev.EscalationRaised(1, 1, "ems", ("r",), (), "Call.", True, 1.0))
    metrics.observe(ev.AgentInterrupted(3, 1, 0.5, 0.7))
    metrics.observe(ev.PipelineError("asr_final", "RuntimeError", "boom", 1.0))
    metrics.observe(ev.PipelineError("llm", "TimeoutError", "slow", 1.0))
    metrics.observe(ev.PipelineError("tts_render", "OSError", "x", 1.0))
    metrics.observe(ev.AgentReplyFinished(3, 1, "text", False, True, 1.0))
    after = scrape(settings)

    def delta(name, labels=None):
        return sample(after, name, labels) - sample(before, name, labels)

    assert delta("triage_response_onset_seconds_count") == 1
    assert delta("triage_response_onset_seconds_bucket", {"le": "0.8"}) == 1
    assert delta("triage_response_onset_seconds_bucket", {"le": "0.6"}) == 0
    assert delta("triage_stage_seconds_count", {"stage": "asr_final"}) == 1
    assert delta("triage_stage_seconds_sum", {"stage": "llm_first_token"}) == pytest.approx(0.25)
    assert delta("triage_answer_onset_seconds_count") == 1
    assert delta("triage_budget_misses_total", {"stage": "response_onset"}) == 1
    assert delta("triage_escalations_total", {"level": "1", "on_partial": "true"}) == 1
    assert delta("triage_interruptions_total") == 1
    for component in ("asr", "llm", "tts"):
        assert delta("triage_pipeline_errors_total", {"component": component}) == 1, component
    assert delta("triage_agent_replies_total", {"fallback": "true"}) == 1


def test_stored_state_gauges(settings):
    session, _ = services.create_session(subject="self", age_band="", pregnant=None, consent=True)
    services.record_escalation(session.pk, ev.EscalationRaised(1, 1, "ems", ("r",), (), "Call.", False, 1.0))
    text = scrape(settings)
    assert sample(text, "triage_sessions_open", {"status": "escalated"}) == 1
    assert sample(text, "triage_alerts_open") == 1
    assert sample(text, "triage_outbox_pending") == 2  # the email and webhook notifications


def test_component_mapping():
    assert [metrics.component_of(s) for s in ("asr_partial", "LLM", "tts", "vad", "audio_in")] == [
        "asr", "llm", "tts", "vad", "other"
    ]  # fmt: skip


WRITER = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from triage import metrics
metrics.INTERRUPTIONS.inc()
metrics.DROPOFFS.inc(2)
"""

READER = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(generate_latest(registry).decode())
"""


def test_multiprocess_mode_aggregates_across_processes(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two "worker" processes
        subprocess.run([sys.executable, "-c", WRITER], env=env, cwd=REPO, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", READER], env=env, cwd=REPO, check=True, timeout=60,
                         capture_output=True, text=True).stdout  # fmt: skip
    assert sample(out, "triage_interruptions_total") == 2
    assert sample(out, "triage_dropoffs_total") == 4
