"""Shared test configuration."""

import os

# Test speech and models come from the bundled packages only; never a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# config/asgi.py starts the in-process beat (embedded mode) when it is imported, and tests
# import it: keep it off here and in the servers tests start, unless TRIAGE_INPROCESS_BEAT
# asks for it (tests/triage/test_inprocess_beat.py starts its own). pytest-django has loaded
# the settings before this file, so the live setting is switched too.
os.environ.setdefault("TRIAGE_INPROCESS_BEAT", "0")
# No call cap (admission control) in tests and the servers they start, unless a test sets one
# (tests/triage/test_admission.py): on a 2-core machine the default cap is 4, and calls a test
# left in their 60 s reconnect grace would make the next test's caller wait for a line.
os.environ.setdefault("TRIAGE_MAX_CALLS", "0")

from django.conf import settings  # noqa: E402

from config.settings import env_bool  # noqa: E402

settings.TRIAGE["INPROCESS_BEAT"] = env_bool("TRIAGE_INPROCESS_BEAT", False)
settings.TRIAGE["MAX_CALLS"] = int(os.environ["TRIAGE_MAX_CALLS"])
