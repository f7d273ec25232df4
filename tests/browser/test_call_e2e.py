"""Whole calls in real headless Chromium: the fake microphone plays a Piper WAV, daphne runs
the real voice pipeline and writes to the PostgreSQL test database, and the test watches the
page (captions, state, played-frames counter) and then reads the database.

Timings the page measured are saved to test-artifacts/browser/<test>.json and metrics.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from tests.browser.conftest import IntakePage
from tests.browser.harness import ARTIFACTS, ROOT, microphone_wav
from triage.audit import verify_chain
from triage.models import AuditEvent, EscalationAlert, TriageSession, Turn

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}
# The microphone file starts when the page opens the microphone (Start). This much silence
# lets the greeting (about 10.5 s of speech) play out first: it is interruptible and these
# tests want it heard.
GREETING_MS = 13000
UTTERANCE = "I have had a headache since this morning."
BARGE_IN = "Sorry, wait, I need to tell you something else about it."
EMERGENCY = "I have crushing chest pain and I can't breathe."


def in_thread(fn, *args):
    """Run ORM code in a worker thread: Playwright's sync API keeps an event loop running in
    the test's thread, and Django refuses database calls from there."""

    def run():
        try:
            return fn(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def record_metrics(name: str, data: dict) -> None:
    path = ARTIFACTS / "metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics[name] = data
    path.write_text(json.dumps(metrics, indent=2))


@pytest.fixture
def pages(request):
    """Pages opened by a test; what each saw is saved as test-artifacts/browser/<test>.json,
    pass or fail."""
    opened: list[IntakePage] = []
    yield opened
    for i, page in enumerate(opened):
        try:
            page.dump(request.node.name + (f"-{i}" if i else ""))
        except Exception:  # the browser may already be gone; the test's own result stands
            pass


def start_call(chromium, pages, base_url: str, wav, viewport=LAPTOP) -> IntakePage:
    page = IntakePage(chromium(wav).new_page(viewport=viewport), base_url)
    pages.append(page)
    page.open()
    page.consent()
    page.details(subject="self", age_band="18_to_64", pregnant="false")
    page.start()
    page.wait_for("window.triage.connection && window.triage.connection.ready", timeout=60_000)
    return page


def played_advances(page: IntakePage, within_s: float = 3.0) -> bool:
    first = page.triage()["stats"]["playedFrames"]
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        page.page.wait_for_timeout(100)
        if page.triage()["stats"]["playedFrames"] > first:
            return True
    return False


def test_spoken_turn_captions_agent_audio_and_storage(warm_server, chromium, pages):
    wav = microphone_wav(ARTIFACTS / "headache.wav", GREETING_MS, UTTERANCE)
    page = start_call(chromium, pages, warm_server.base_url, wav)
    # The greeting plays: the played-frames counter advances.
    page.wait_for("window.triage.metrics.responses.length >= 1", timeout=30_000)
    assert played_advances(page), "greeting audio is not playing"
    assert page.page.locator("#captions .caption-agent").count() >= 1
    page.screenshot("04-live-call-greeting")

    # The patient speaks; partial then final captions show the words.
    page.wait_for(
        "[...document.querySelectorAll('#captions .caption-patient')].some(p => /headache/i.test(p.textContent))",
        timeout=90_000,
    )
    caption = page.page.locator("#captions .caption-patient").last.inner_text().lower()
    assert "headache" in caption and "morning" in caption
    # The agent answers: a new reply starts playing after the patient's speech.
    page.wait_for("window.triage.metrics.responses.some(r => r.ms !== null)", timeout=60_000)
    assert played_advances(page), "the answer's audio is not playing"
    page.wait_for("document.querySelectorAll('#captions .caption-agent').length >= 2", timeout=30_000)
    state = page.triage()
    assert state["stats"]["partialCaptions"] >= 1, "no partial caption was shown while the patient spoke"
    seen_states = {e["state"] for e in state["events"] if e["type"] == "state"}
    assert {"listening", "user_speaking", "thinking", "agent_speaking"} <= seen_states, seen_states
    page.screenshot("05-live-call")
    # The README's picture of the live call: written when missing or asked for, so a test
    # run does not churn a tracked file.
    readme_image = ROOT / "docs" / "img" / "intake.png"
    if not readme_image.exists() or os.environ.get("TRIAGE_UPDATE_SCREENSHOTS") == "1":
        readme_image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTIFACTS / "05-live-call.png", readme_image)
    page.page.set_viewport_size(PHONE)
    assert page.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot("06-phone-live-call")
    page.page.set_viewport_size(LAPTOP)

    # Let the answer finish so its playback report reaches the server, then hang up.
    page.wait_for(
        "window.triage.callState === 'listening' && window.triage.stats.bufferedFrames === 0", 60_000
    )
    page.page.wait_for_timeout(300)
    state = page.triage()
    page.end_call()
    page.screenshot("07-ended")
    # Each reply that played to the end was reported to the server with what was heard.
    reported = {e["reply_id"]: e["played_ms"] for e in state["events"] if e["type"] == "playback_done"}
    started = {e["reply_id"] for e in state["events"] if e["type"] == "agent_reply_start"}
    assert started and set(reported) == started and min(reported.values()) > 500, reported
    response = next(r for r in state["metrics"]["responses"] if r["ms"] is not None)
    record_metrics(
        "spoken_turn",
        {"end_of_speech_to_first_agent_audio_ms": response["ms"], "reply_kind": response["kind"]},
    )

    def stored(session_id):
        session = TriageSession.objects.get(pk=session_id)
        assert session.status == TriageSession.Status.ENDED and session.age_band == "18_to_64"
        assert session.pregnant is False and session.consent_at is not None
        turns = list(Turn.objects.filter(session=session).order_by("index"))
        patient = [t for t in turns if t.speaker == "patient"]
        agent = [t for t in turns if t.speaker == "agent"]
        assert len(patient) == 1 and "headache" in patient[0].text.lower()
        assert len(agent) >= 2 and not any(t.interrupted for t in agent)
        kinds = set(AuditEvent.objects.filter(session=session).values_list("kind", flat=True))
        assert {"session_created", "socket_connected", "patient_turn", "agent_turn", "session_ended"} <= kinds
        assert verify_chain(session.pk) is None

    in_thread(stored, state["sessionId"])


def test_speaking_over_the_agent_stops_its_playback(warm_server, chromium, pages):
    # The patient answers, then starts talking again while the agent is answering.
    wav = microphone_wav(ARTIFACTS / "barge-in.wav", GREETING_MS, UTTERANCE, 2500, BARGE_IN, BARGE_IN)
    page = start_call(chromium, pages, warm_server.base_url, wav)
    page.wait_for("window.triage.metrics.interrupts.length >= 1", timeout=120_000)
    state = page.triage()
    interrupt = state["metrics"]["interrupts"][0]
    frozen = state["stats"]["playedFrames"]
    page.page.wait_for_timeout(250)  # the patient is still talking: no new reply can start yet
    after = page.triage()
    assert after["stats"]["playedFrames"] == frozen and after["stats"]["bufferedFrames"] == 0
    page.screenshot("08-barge-in")
    interrupted_kind = next(
        e["kind"]
        for e in state["events"]
        if e["type"] == "agent_reply_start" and e["reply_id"] == interrupt["reply_id"]
    )
    assert interrupted_kind != "greeting", "the answer, not the greeting, was interrupted"
    # Then the patient's new words are heard: as a turn of their own, or joined into the turn the
    # agent was answering (voice.pipeline joins speech that starts within join_window_ms of the
    # endpoint, before the reply's question has been heard); either way no half-line is left.
    page.wait_for(
        "[...document.querySelectorAll('#captions .caption-patient')].some(p => /tell you|something else/i.test(p.textContent))"
        " && !document.querySelector('#captions .caption-partial')",
        timeout=90_000,
    )
    page.end_call()
    record_metrics(
        "barge_in",
        {"page_stop_ms": interrupt["stop_ms"], "speech_onset_to_silence_ms": interrupt["onset_to_stop_ms"]},
    )

    def stored(session_id):
        barge = AuditEvent.objects.get(session_id=session_id, kind="barge_in")
        assert barge.payload["reply_id"] == interrupt["reply_id"]
        turns = AuditEvent.objects.filter(session_id=session_id, kind="agent_turn")
        stopped = next(e.payload for e in turns if e.payload["reply_id"] == interrupt["reply_id"])
        assert stopped["interrupted"] is True
        turn = Turn.objects.get(session_id=session_id, index=stopped["turn_index"])
        assert verify_chain(session_id) is None
        return turn.played_ms, turn.interrupted

    played_ms, interrupted = in_thread(stored, state["sessionId"])
    # The server stored what the page said it played, not the whole reply.
    assert interrupted and played_ms is not None and abs(played_ms - interrupt["played_ms"]) < 1, (
        played_ms,
        interrupt,
    )


def test_escalation_shows_and_speaks_the_emergency_instructions(warm_server, chromium, pages):
    wav = microphone_wav(ARTIFACTS / "emergency.wav", GREETING_MS, EMERGENCY)
    page = start_call(chromium, pages, warm_server.base_url, wav)
    page.page.wait_for_selector("#escalation:not([hidden])", timeout=90_000)
    state = page.triage()
    banner = page.page.locator("#escalation")
    assert banner.get_attribute("role") == "alert"
    script = state["escalation"]["script"]
    assert script and page.page.locator("#escalation-script").inner_text() == script
    # The same instructions are spoken: they are in the agent's captions and audio plays.
    first_sentence = script.split(".")[0]
    page.wait_for(
        f"[...document.querySelectorAll('#captions .caption-agent')].some(p => p.textContent.includes({first_sentence!r}))",
        timeout=60_000,
    )
    assert played_advances(page)
    page.screenshot("09-escalation")
    page.page.set_viewport_size(PHONE)
    page.screenshot("10-phone-escalation")
    page.page.set_viewport_size(LAPTOP)
    page.wait_for("window.triage.stats.bufferedFrames === 0", timeout=60_000)
    page.end_call()
    # The instructions stay on screen after the call.
    assert script in page.page.locator("#step-ended").inner_text()

    def stored(session_id):
        alert = EscalationAlert.objects.get(session_id=session_id)
        assert alert.level == state["escalation"]["level"] <= 2
        assert TriageSession.objects.get(pk=session_id).urgency_level == alert.level
        assert verify_chain(session_id) is None

    in_thread(stored, state["sessionId"])


def test_a_dropped_connection_reconnects_to_the_same_session(warm_server, chromium, pages):
    wav = microphone_wav(ARTIFACTS / "silence.wav", tail_ms=20000)
    page = start_call(chromium, pages, warm_server.base_url, wav)
    session_id = page.triage()["sessionId"]
    page.page.evaluate("window.triage.dropConnection()")
    page.wait_for("window.triage.resumedCount >= 1", timeout=30_000)
    assert page.page.locator("#connection-status").inner_text() == "Reconnected."
    state = page.triage()
    assert state["sessionId"] == session_id and state["connection"]["reconnects"] == 1
    # A frame over the WebSocket layer's 1 MiB limit: daphne drops the connection (see
    # docs/protocol.md); the page reconnects and the call goes on.
    page.page.evaluate("window.triage.connection.ws.send(new ArrayBuffer(2 * 1024 * 1024))")
    page.wait_for("window.triage.resumedCount >= 2", timeout=30_000)
    drops = [e for e in page.triage()["events"] if e["type"] == "connection_dropped"]
    assert len(drops) == 2 and drops[1]["code"] in (1006, 1009), drops
    page.end_call()

    def stored(session_id):
        events = AuditEvent.objects.filter(session_id=session_id).order_by("seq")
        kinds = list(events.values_list("kind", flat=True))
        assert kinds.count("socket_connected") == 1
        assert kinds.count("socket_disconnected") == 2 and kinds.count("socket_reconnected") == 2
        assert kinds.index("socket_disconnected") < kinds.index("socket_reconnected")
        assert verify_chain(session_id) is None

    in_thread(stored, session_id)
