"""Static files in production: collectstatic writes content-hashed names (whitenoise's
CompressedManifestStaticFilesStorage), pages reference them, and a real daphne serves them
with far-future cache headers, compressed; the page works in Chromium from them."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import urllib.request

import pytest

from tests.browser.conftest import IntakePage
from tests.browser.harness import ROOT, Daphne

PAGE_ASSETS = [
    "triage/site.css",
    "triage/intake.css",
    "triage/intake.js",
    "triage/audio-engine.js",
    "triage/call-connection.js",
    "triage/capture-worklet.js",
    "triage/playback-worklet.js",
]


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("production")
    env = {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp / "static"),
        "SECURE_SSL_REDIRECT": "0",  # no TLS proxy in front of this test server
        "TRIAGE_PRELOAD_MODELS": "0",
    }
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stdout + collect.stderr
    server = Daphne(env, "daphne-production.log")
    try:
        server.wait_ready()
        yield server, tmp / "static"
    finally:
        server.stop()


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "SECRET_KEY", "DATABASE_URL"}}


def get(url: str, **headers) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_collectstatic_writes_hashed_and_compressed_files(production):
    _, static_root = production
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    for asset in PAGE_ASSETS:
        hashed = manifest[asset]
        assert re.fullmatch(
            re.escape(asset.rsplit(".", 1)[0]) + r"\.[0-9a-f]{12}\." + asset.rsplit(".", 1)[1], hashed
        )
        assert (static_root / hashed).is_file() and (static_root / (hashed + ".gz")).is_file()


def test_pages_use_hashed_names_served_with_long_cache_headers(production):
    server, static_root = production
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    status, _, body = get(server.base_url + "/")
    html = body.decode()
    assert status == 200
    for asset in PAGE_ASSETS:
        assert f"/static/{manifest[asset]}" in html, f"{asset} is not referenced by its hashed name"
        assert f'"/static/{asset}"' not in html
        status, headers, content = get(
            server.base_url + f"/static/{manifest[asset]}", **{"Accept-Encoding": "gzip"}
        )
        assert status == 200
        assert "max-age=315360000" in headers["cache-control"] and "immutable" in headers["cache-control"]
        assert headers.get("content-encoding") == "gzip"
    # Worklets load as JavaScript modules: they need a JavaScript content type.
    _, headers, _ = get(server.base_url + f"/static/{manifest['triage/capture-worklet.js']}")
    assert "javascript" in headers["content-type"]


@pytest.mark.browser
def test_the_page_runs_from_hashed_files_in_chromium(production, chromium):
    server, _ = production
    page = chromium().new_page()
    intake = IntakePage(page, server.base_url)
    intake.open()
    loaded = page.evaluate(
        """async () => {
          const root = document.getElementById('intake');
          const engine = new TriageAudio.AudioEngine({captureUrl: root.dataset.captureWorklet,
            playbackUrl: root.dataset.playbackWorklet, onFrame: () => {}, onPlaybackEvent: () => {}});
          await engine.createContext();
          await engine.loadWorklets();
          await engine.close();
          return [root.dataset.captureWorklet, root.dataset.playbackWorklet];
        }"""
    )
    assert all(re.search(r"\.[0-9a-f]{12}\.js$", url) for url in loaded), loaded
    intake.consent()
    assert not [c for c in intake.console if c.startswith(("error", "pageerror"))], intake.console
    assert all(url.startswith(server.base_url) for url in intake.requests)
