"""Headless Chromium with a WAV file as its microphone, for the browser benchmarks and the
browser tests (tests/browser/harness.py) alike: one launch line, one set of flags."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
# Two pages measured side by side (evals/triage/bench_handoff_browser.py): neither may be slowed
# as a background window.
NO_BACKGROUND_THROTTLING = ("--disable-background-timer-throttling", "--disable-renderer-backgrounding")


def launch(playwright, wav: Path | None = None, *, extra_args: tuple[str, ...] = ()):
    """Debian's Chromium (``CHROMIUM_PATH``), its microphone playing ``wav`` once if given."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(
            f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
        )
    args = [*CHROMIUM_ARGS, *extra_args]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)
