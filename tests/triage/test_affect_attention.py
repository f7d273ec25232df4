"""Affect tags on the Django side: audited, on the review timeline with their feature values, on
the dashboard row (live, to a connected dashboard), counted in Prometheus; never a level.

Real PostgreSQL, the real Redis channel layer, real features (Piper speech broken by breaths,
measured by Praat) and the real tagger; the reading enters a LiveCall through the pipeline's
event callback (``_on_event``), the production path.
"""

from __future__ import annotations

import functools
import time

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from clinical_rules import PatientContext
from evals.voice import affect as E
from tests.triage.clinician_support import make_clinician, receive_until
from tests.triage.test_dashboard import dashboard_socket
from triage import affect as affect_host
from triage import services
from triage.dashboard import selectors, timeline
from triage.live import LiveCall
from triage.models import AuditEvent, LatencySample, TriageSession
from voice.affect import AffectObserved, AffectTracker
from voice.paralinguistics import extract

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

BASE = ("my ankle is swollen after I twisted it playing football yesterday",)
SAID = "I have had an itchy rash on my arm for about a week now"


@functools.cache
def breathless_event(turn_id: int = 3) -> AffectObserved:
    tracker = AffectTracker()
    for i, text in enumerate(BASE):
        audio, said = E.condition_audio("fluent", text, "piper")
        tracker.observe(i, extract(E.turn(audio, i), E.RATE, words=len(said.split())), said)
    audio, said = E.condition_audio("breath", SAID, "piper")
    reading = tracker.observe(turn_id, extract(E.turn(audio, 9), E.RATE, words=len(said.split())), said)
    assert reading.tag("breathless") is not None
    return AffectObserved(turn_id, reading, ("general.breathing",), time.monotonic())


def make_session():
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    TriageSession.objects.filter(pk=session.pk).update(urgency_level=4, disposition="primary_care_days")
    return session


@pytest.mark.django_db
def test_tags_are_audited_and_shown_with_their_values_and_change_no_level():
    session = make_session()
    event = breathless_event()
    affect_host.record(session.pk, event, event.turn_id)
    session.refresh_from_db()
    assert session.urgency_level == 4 and session.disposition == "primary_care_days"
    assert session.status == TriageSession.Status.ACTIVE
    stored = AuditEvent.objects.get(session=session, kind="affect_tags")
    assert stored.actor == "affect" and stored.payload["attention"] is True
    tag = stored.payload["tags"][0]
    assert tag["tag"] == "breathless" and tag["level"] is None
    assert {e["feature"] for e in tag["evidence"]} >= {"pauses", "words_per_phrase"}
    assert stored.payload["features"]["pauses"] >= 3
    assert stored.payload["questions_queued"] == ["general.breathing"]
    assert "itchy" not in str(stored.payload)  # no transcript text in the record
    item = next(i for i in timeline.build(session)["items"] if i.title.startswith("How the caller speaks"))
    assert "Breathless" in item.title and "clinician attention" in item.title
    assert "pauses" in item.text and "asked next: general.breathing" in item.text
    assert item.detail["features"]["phrases"] >= 4
    row = selectors.fetch_row(session.pk)
    assert [a["tag"] for a in row["attention"]] == ["breathless"] and row["urgency_level"] == 4
    sample = LatencySample.objects.get(session=session, turn_id=event.turn_id, stage="affect_features")
    assert sample.duration_ms == round(event.reading.features.cost_ms, 2) and sample.budget_ms == 30.0


@pytest.mark.django_db
def test_the_review_page_shows_the_tags_with_their_feature_values():
    from django.test import Client

    session = make_session()
    event = breathless_event()
    affect_host.record(session.pk, event, event.turn_id)
    client = Client()
    client.force_login(make_clinician())
    page = client.get(f"/review/{session.pk}/").content.decode()
    assert "How the caller speaks: Breathless speech pattern" in page
    assert "words_per_phrase" in page and "asked next: general.breathing" in page
    assert "Feature values of this turn (baseline: 1 turn)" in page and "articulation_rate" in page


@pytest.mark.django_db
def test_an_untagged_turn_is_not_audited():
    session = make_session()
    event = breathless_event()
    quiet = AffectObserved(1, AffectTracker().observe(1, None, "it is a bit sore"), (), 0.0)
    assert quiet.reading.tags == ()
    assert affect_host.record(session.pk, quiet, 1) is None
    assert not AuditEvent.objects.filter(session=session, kind="affect_tags").exists()
    assert selectors.fetch_row(session.pk)["attention"] == [] and event.reading.attention


@pytest.mark.django_db(transaction=True)
async def test_the_attention_flag_reaches_a_connected_dashboard_live():
    user = await database_sync_to_async(make_clinician)()
    session = await database_sync_to_async(make_session)()
    communicator, snapshot = await dashboard_socket(user)
    assert next(r for r in snapshot["sessions"] if r["id"] == str(session.pk))["attention"] == []
    call = LiveCall(str(session.pk), PatientContext(subject="self", age_band="18_to_64", pregnant=None))
    call.start_recording()
    before = REGISTRY.get_sample_value("triage_affect_attention_total", {"tag": "breathless"}) or 0.0
    try:
        await call._on_event(breathless_event())
        row = await receive_until(
            communicator, lambda m: m["type"] == "session" and m["session"]["attention"], timeout=10
        )
    finally:
        await call.end("test")
        await communicator.disconnect()
    flag = row["session"]["attention"][0]
    assert row["session"]["id"] == str(session.pk) and flag["tag"] == "breathless"
    assert any(e["feature"] == "words_per_phrase" for e in flag["evidence"])
    assert row["session"]["urgency_level"] == 4  # the flag sits beside the level, never changes it
    after = REGISTRY.get_sample_value("triage_affect_attention_total", {"tag": "breathless"})
    assert after == before + 1


@pytest.mark.django_db
def test_the_callers_baseline_is_stored_and_a_resumed_call_continues_from_it():
    """A call moved to another node (triage/resume.py) compares the caller with how they spoke
    before the move, not with their next (perhaps already breathless) turns."""
    from triage.resume import load_resume_point

    session = make_session()
    first = AffectTracker()
    for i, text in enumerate((*BASE, SAID)):
        audio, said = E.condition_audio("fluent", text, "piper")
        reading = first.observe(i, extract(E.turn(audio, i), E.RATE, words=len(said.split())), said)
        assert reading.in_baseline and not reading.tags
        affect_host.record(session.pk, AffectObserved(i, reading, (), 0.0), i)
    assert first.baseline is not None and first.baseline.turns == 2
    stored = AuditEvent.objects.filter(session=session, kind="affect_baseline").order_by("seq")
    assert [e.payload["turn_id"] for e in stored] == [0, 1] and stored[0].actor == "affect"
    assert "swollen" not in str(stored[0].payload) and not any(  # numbers only, no words
        isinstance(v, str) for v in stored[0].payload["features"].values()
    )
    assert not any(i.title.startswith("How the caller speaks") for i in timeline.build(session)["items"])

    # The node that took the call over: the same baseline, and the next turn is measured against it.
    resumed = AffectTracker()
    resumed.restore(affect_host.baseline_features(load_resume_point(str(session.pk)).affect_baseline))
    assert resumed.baseline == first.baseline
    audio, said = E.condition_audio("slow", "my ankle hurts when I walk on it", "piper")
    slow = extract(E.turn(audio, 7), E.RATE, words=len(said.split()))
    reading = resumed.observe(100_000, slow, said)
    assert not reading.in_baseline and reading.baseline == first.baseline
    # Without the stored baseline the slowed turn would have been taken as the caller's normal.
    fresh = AffectTracker().observe(100_000, slow, said)
    assert fresh.baseline is None
    assert [e.feature for e in reading.tag("slow_slurred").evidence][0] == "articulation_rate_vs_baseline"


@pytest.mark.django_db
def test_a_stored_baseline_that_no_longer_fits_the_features_is_skipped():
    assert affect_host.baseline_features([{"features": {"phrases": 2}}, {}]) == []
