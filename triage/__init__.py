"""Django side of the triage voice platform: models, consumers, views, admin, Celery tasks (the
project's settings, URLs, ASGI and Celery applications are in ``config/``)."""
