"""Celery application. Broker is Redis when REDIS_URL is set; otherwise tasks run eagerly in-process."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("triage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["triage"])


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_placeholder_secrets(**kwargs):
    """Production worker and beat stop at start-up with deploy/env.example's placeholders.
    SystemExit, because Celery logs and swallows an Exception raised by a signal handler."""
    from django.core.exceptions import ImproperlyConfigured

    from triage.deploy_checks import refuse_placeholder_secrets

    try:
        refuse_placeholder_secrets()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"ImproperlyConfigured: {exc}") from exc
