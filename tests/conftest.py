"""Shared test configuration."""

import os

# Test speech and models come from the bundled packages only; never a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# triage/asgi.py starts the in-process beat (embedded mode) when it is imported, and tests
# import it: keep it off here and in the servers tests start, unless TRIAGE_INPROCESS_BEAT
# asks for it (tests/triage/test_inprocess_beat.py starts its own). pytest-django has loaded
# the settings before this file, so the live setting is switched too.
os.environ.setdefault("TRIAGE_INPROCESS_BEAT", "0")

from django.conf import settings  # noqa: E402

from triage.settings import env_bool  # noqa: E402

settings.TRIAGE["INPROCESS_BEAT"] = env_bool("TRIAGE_INPROCESS_BEAT", False)
