"""Django side of the triage voice platform: settings, models, consumers, views, admin, Celery."""

from .celery import app as celery_app

__all__ = ["celery_app"]
