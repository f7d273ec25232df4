"""The intake page and its audio worklets in real headless Chromium (no voice models needed:
no call is started, or the worklets are driven directly)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import IntakePage
from tests.browser.harness import write_wav

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
COUNT_MICROPHONE_USE = """
  window.__micRequests = 0;
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.__micRequests += 1; return original(c); };
"""


def test_consent_comes_first_and_nothing_is_streamed_before_start(daphne_server, chromium):
    page = chromium().new_page(viewport=LAPTOP)
    page.add_init_script(COUNT_MICROPHONE_USE)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    intake = IntakePage(page, daphne_server.base_url)
    intake.open()

    assert page.locator("#step-consent").is_visible()
    assert not page.locator("#step-details").is_visible() and not page.locator("#step-call").is_visible()
    assert "privacy" in page.locator("#step-consent").inner_text().lower()
    intake.screenshot("01-consent")

    # Continuing without agreeing is refused with a message tied to the checkbox.
    page.get_by_role("button", name="Continue").click()
    assert page.locator("#consent-error").is_visible()
    assert page.get_by_label("I have read this and I agree").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "consent"
    assert not page.locator("#step-details").is_visible()
    intake.screenshot("01b-consent-refused")

    intake.consent()
    intake.details(subject="child", age_band="2_to_11")
    assert not page.locator("#pregnancy-field").is_visible(), "pregnancy is not asked for a young child"
    intake.screenshot("02-details")

    # Up to here: no microphone, no socket, no session.
    assert page.evaluate("window.__micRequests") == 0
    assert sockets == []
    assert not any("/api/sessions" in url for url in intake.requests)
    # Everything the page loaded came from this server (no CDN).
    assert intake.requests and all(url.startswith(daphne_server.base_url) for url in intake.requests), (
        intake.requests
    )
    assert not [c for c in intake.console if c.startswith(("error", "pageerror"))], intake.console


def test_keyboard_only_and_labelled_for_screen_readers(daphne_server, chromium):
    page = chromium().new_page(viewport=LAPTOP)
    intake = IntakePage(page, daphne_server.base_url)
    intake.open()

    # Reach the consent box with Tab, tick it with Space, submit with Enter.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "consent":
            break
    assert page.evaluate("document.activeElement.id") == "consent"
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_selector("#step-details:not([hidden])")
    # Focus moves to the new step's heading, so a screen reader announces it.
    assert page.evaluate("document.activeElement.id") == "details-title"

    # Every control has an accessible name.
    assert page.get_by_role("group", name="Who is this call about?").is_visible()
    for name in ("Myself", "My child", "Someone else"):
        assert page.get_by_role("radio", name=name).count() == 1
    assert page.get_by_role("combobox", name="Age of the person who is unwell").is_visible()
    assert page.get_by_role("group", name="Is the person who is unwell pregnant?").is_visible()
    assert page.get_by_role("button", name="Start the call").is_visible()

    # Radios by arrow keys, the age by keyboard, pregnancy answer: all without a mouse.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "self"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.querySelector('input[name=subject]:checked').value") == "child"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "age_band"
    page.get_by_label("Age of the person who is unwell").select_option("18_to_64")
    assert page.locator("#pregnancy-field").is_visible()
    # The live-call parts are labelled too (checked in the markup; they show once a call starts).
    assert page.locator("#captions").get_attribute("role") == "log"
    assert page.locator("#escalation").get_attribute("role") == "alert"
    assert page.locator(".call-state").get_attribute("role") == "status"


@pytest.mark.parametrize("text_scale", ["100%", "200%"])
def test_phone_width_and_large_text_fit_without_sideways_scrolling(daphne_server, chromium, text_scale):
    page = chromium().new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    intake = IntakePage(page, daphne_server.base_url)
    intake.open()
    page.evaluate(f"document.documentElement.style.fontSize = '{text_scale}'")
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits)
    intake.screenshot(f"03-phone-consent-text-{text_scale[:-1]}")
    intake.consent()
    assert page.evaluate(fits)
    # Touch targets: buttons at least 44 CSS px tall.
    assert page.get_by_role("button", name="Start the call").bounding_box()["height"] >= 44
    intake.screenshot(f"03-phone-details-text-{text_scale[:-1]}")


def test_capture_worklet_sends_16khz_s16le_in_20ms_frames(daphne_server, chromium, artifacts):
    # A 1 kHz tone as the microphone: a wrong resampling ratio would move its pitch.
    rate = 16000
    t = np.arange(rate * 4) / rate
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t) * 32767).astype("<i2").tobytes()
    wav = write_wav(artifacts / "tone-1khz.wav", tone + bytes(rate * 2 * 30))
    page = chromium(wav).new_page()
    IntakePage(page, daphne_server.base_url).open()
    result = page.evaluate(
        """async () => {
          const root = document.getElementById('intake');
          const frames = [];
          const engine = new TriageAudio.AudioEngine({
            captureUrl: root.dataset.captureWorklet, playbackUrl: root.dataset.playbackWorklet,
            onFrame: (pcm, rms, t) => frames.push({bytes: pcm.byteLength, samples: Array.from(new Int16Array(pcm)), t}),
            onPlaybackEvent: () => {},
          });
          await engine.createContext();
          const settings = await engine.startMicrophone();
          await new Promise((r) => setTimeout(r, 1500));
          const rate = engine.context.sampleRate;
          await engine.close();
          return {settings, rate, sizes: frames.map((f) => f.bytes), times: frames.map((f) => f.t),
                  samples: frames.slice(10, 60).flatMap((f) => f.samples)};
        }"""
    )
    settings = result["settings"]
    assert settings["echoCancellation"] and settings["noiseSuppression"] and settings["autoGainControl"]
    assert set(result["sizes"]) == {640}, "20 ms of 16 kHz s16le mono"
    times = np.array(result["times"])
    per_second = (len(times) - 1) / (times[-1] - times[0])
    assert 48 <= per_second <= 52, f"{per_second:.1f} frames/s from a {result['rate']} Hz context"
    x = np.array(result["samples"], dtype=float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak = np.fft.rfftfreq(len(x), 1 / 16000)[spectrum.argmax()]
    assert abs(peak - 1000) <= 20, f"tone came out at {peak:.0f} Hz"


def test_playback_worklet_starts_on_first_chunk_and_stops_within_one_callback(daphne_server, chromium):
    page = chromium().new_page()
    IntakePage(page, daphne_server.base_url).open()
    result = page.evaluate(
        """async () => {
          const root = document.getElementById('intake');
          const events = [];
          const engine = new TriageAudio.AudioEngine({
            captureUrl: root.dataset.captureWorklet, playbackUrl: root.dataset.playbackWorklet,
            onFrame: () => {}, onPlaybackEvent: (m) => events.push(m),
          });
          await engine.createContext();
          await engine.loadWorklets();
          engine.ensurePlayback(16000);
          const ctx = engine.context;
          const analyser = ctx.createAnalyser();
          analyser.fftSize = 2048;
          engine.playback.connect(analyser);
          const wait = (ms) => new Promise((r) => setTimeout(r, ms));
          const level = () => { const b = new Float32Array(analyser.fftSize); analyser.getFloatTimeDomainData(b);
                                return Math.max(...b.map(Math.abs)); };
          const tone = (n) => { const a = new Int16Array(n);
                                for (let i = 0; i < n; i++) a[i] = Math.round(8000 * Math.sin(2 * Math.PI * 440 * i / 16000));
                                return a.buffer; };
          // Reply 1: one second, complete; it must play through and report ~1000 ms.
          const posted1 = ctx.currentTime;
          engine.play(1, tone(16000));
          engine.complete(1);
          await wait(1400);
          // Reply 2: three seconds; flush after ~0.5 s of it.
          engine.play(2, tone(48000));
          await wait(500);
          const playingLevel = level();
          const before = events.filter((e) => e.type === 'progress').pop().played;
          const t0 = ctx.currentTime;
          const flushed = await engine.flush();
          await wait(60);
          const afterLevel = level();
          const playedAfter = (events.filter((e) => e.type === 'progress').pop() || {}).played;
          await wait(300);
          const playedLater = (events.filter((e) => e.type === 'progress').pop() || {}).played;
          return {rate: ctx.sampleRate, posted1, t0, flushed, before, playingLevel, afterLevel, playedAfter, playedLater,
                  events: events.filter((e) => e.type !== 'progress')};
        }"""
    )
    quantum = 128 / result["rate"]
    started = [e for e in result["events"] if e["type"] == "started"]
    assert [e["id"] for e in started] == [1, 2]
    # No pre-buffering: the first chunk plays in the render quantum after it reached the
    # worklet (audio-thread clock on both sides, so main-thread scheduling cannot blur it).
    assert 0 <= started[0]["t"] - started[0]["arrived"] <= quantum + 1e-9
    # Main thread -> worklet message latency is the browser's, not ours: only a sanity bound
    # that a pre-buffering player (hundreds of ms) would fail.
    assert started[0]["t"] - result["posted1"] <= 0.1
    done = [e for e in result["events"] if e["type"] == "done"]
    assert [e["id"] for e in done] == [1] and abs(done[0]["ms"] - 1000) <= 1
    assert result["playingLevel"] > 0.1
    # Flush empties the ring when the message arrives, so the next audio callback is silent and
    # the counter frozen (checked below on the output and the counters). The posting delay is
    # the browser's message latency: a sanity bound only.
    stop_s = result["flushed"]["t"] - result["t0"]
    assert 0 <= stop_s <= 0.1, f"stopped {stop_s * 1000:.1f} ms after the flush was posted"
    assert result["afterLevel"] == 0
    assert result["playedAfter"] == result["playedLater"] == result["flushed"]["playedTotal"]
    reply2 = {r["id"]: r["ms"] for r in result["flushed"]["replies"]}[2]
    assert 300 <= reply2 <= 900, f"reply 2 reported {reply2} ms played"
