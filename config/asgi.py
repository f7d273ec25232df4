"""ASGI entry point: HTTP through Django, WebSockets through Channels consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from triage.deploy_checks import refuse_placeholder_secrets  # noqa: E402

refuse_placeholder_secrets()  # production: never serve with deploy/env.example's placeholders

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from triage.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


def _preload_models() -> None:
    """Load the voice models in the background at start-up so the first call does not wait."""
    import threading

    from django.conf import settings

    from triage.runtime import load_runtime_blocking

    if settings.TRIAGE["PRELOAD_MODELS"]:
        threading.Thread(target=load_runtime_blocking, name="preload-voice-models", daemon=True).start()


_preload_models()


def _start_inprocess_beat(app):
    """Embedded mode has no beat process: run its schedule in this process (once per process;
    management commands never import this module)."""
    from triage import inprocess_beat

    beat = inprocess_beat.start_if_enabled()
    return app if beat is None else inprocess_beat.AttachLoop(app, beat)


application = _start_inprocess_beat(application)


def _install_drain() -> None:
    """SIGTERM drains (no new calls, active ones finish) instead of daphne's immediate stop."""
    from django.conf import settings

    from triage import drain

    drain.install_on_daphne(lambda: settings.TRIAGE["DRAIN_SECONDS"])


_install_drain()


def _start_admission_dispatcher() -> None:
    """Slots that free here are offered to the waiting line of every node (triage/admission/)."""
    from triage import admission

    admission.start_on_daphne()


_start_admission_dispatcher()
