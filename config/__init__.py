"""Project configuration, apart from the app (``triage/``): settings from the environment, the
URLconf, the ASGI application (``daphne config.asgi:application``) and the Celery application
(``celery -A config worker``)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
