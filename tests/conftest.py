"""Shared test configuration."""

import os

# Test speech and models come from the bundled packages only; never a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
