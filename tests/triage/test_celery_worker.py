"""A real ``celery -A config worker`` against a real (private) Redis broker.

Turns written by the call's writer reach the Turn table through the outbox and the worker,
exactly once even when every message is published twice; a failing paging webhook is retried
with backoff until it answers, and is paged exactly once.
"""

import pytest
from django.utils import timezone

from tests.triage.clinician_support import (
    CeleryProcess,
    RedisServer,
    WebhookServer,
    celery_broker,
    celery_env,
    wait_for,
)
from triage import outbox, services
from triage.models import NotificationDelivery, OutboxMessage, Turn
from voice import events as ev

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(180)]


@pytest.fixture
def broker():
    redis = RedisServer().start()
    with celery_broker(redis.url):
        yield redis
    redis.stop()


@pytest.fixture
def webhook():
    server = WebhookServer(fail_first=2).start()
    yield server
    server.stop()


@pytest.fixture
def worker(broker, smtp, webhook, tmp_path):
    env = celery_env(
        broker.url,
        TRIAGE_ESCALATION_WEBHOOK_URL=webhook.url,
        TRIAGE_ESCALATION_EMAILS="oncall@example.org",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        TRIAGE_NOTIFY_BACKOFF_SECONDS="0.5",
        TRIAGE_NOTIFY_MAX_RETRIES="5",
    )
    process = CeleryProcess("worker", env, tmp_path).start()
    yield process
    process.stop()


def test_worker_records_each_turn_once_and_retries_the_pager(worker, webhook, smtp):
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    now = timezone.now()
    for i in range(1, 4):
        services.record_patient_turn(
            session.pk, ev.FinalTranscript(i, f"patient {i}", -0.1, 0.0, 0, 1, 1), now, now
        )
        services.record_agent_turn(session.pk, ev.AgentReplyFinished(i, i, f"agent {i}", False, False, 2), "llm",
                                   None, now, now)  # fmt: skip
    services.record_escalation(
        session.pk,
        ev.EscalationRaised(
            3, 1, "call_emergency_services", ("stroke",), ({"rule_id": "stroke"},), "Call.", False, 3
        ),
    )
    outbox.wait_dispatched()
    # Publish every message a second time: a duplicate delivery must not duplicate anything.
    outbox.dispatch(OutboxMessage.objects.values_list("pk", flat=True))

    wait_for(lambda: Turn.objects.filter(session=session).count() == 6, 60, "six turns stored by the worker")
    wait_for(
        lambda: NotificationDelivery.objects.filter(status="sent").count() == 2,
        60,
        "email and webhook delivered",
    )
    wait_for(
        lambda: OutboxMessage.objects.filter(processed_at__isnull=True).count() == 0, 30, "outbox drained"
    )

    texts = list(Turn.objects.filter(session=session).order_by("index").values_list("text", flat=True))
    assert texts == ["patient 1", "agent 1", "patient 2", "agent 2", "patient 3", "agent 3"]
    assert webhook.attempts == 3 and len(webhook.requests) == 1, "two 503s, then one page"
    assert len(smtp.messages) == 1
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert delivery.attempts == 3
    log = worker.log()
    assert "Retry in" in log, "the webhook task was retried by Celery"
