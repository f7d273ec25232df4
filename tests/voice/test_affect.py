"""Affect and acoustic-sign tags on real synthesized speech (Piper, espeak-ng, sox), measured by
Praat (parselmouth): each tag fires on its condition and not on fluent speech; the loader
validates its data; a tag never changes the rules' level."""

from __future__ import annotations

import pytest

from clinical_rules import PatientContext, TriageInterview
from clinical_rules.affect import AffectRulesError, default_affect_rules, load_affect_rules
from evals.voice import affect as E
from evals.voice import channels
from voice.affect import AffectTracker, lexical_cues
from voice.paralinguistics import extract

TEXTS = (
    "I've had a sore throat for a few days and it hurts to swallow",
    "my ankle is swollen after I twisted it playing football yesterday",
    "I keep getting a bit dizzy when I stand up too quickly",
)


def features(cond: str, text: str, voice: str = "piper", channel: str = "clean"):
    audio, said = E.condition_audio(cond, text, voice)
    heard = channels.apply(E.turn(audio, 0), channel, seed=len(text), ref_dbfs=-22.0)
    return extract(heard, E.RATE, words=len(said.split())), said


def reading(cond: str, voice: str = "piper", text: str = TEXTS[2], channel: str = "clean"):
    tracker = AffectTracker()
    for i, b in enumerate(TEXTS[:2]):
        tracker.observe(i, *features("fluent", b, voice, channel))
    assert tracker.baseline is not None and tracker.baseline.turns == 2
    return tracker.observe(5, *features(cond, text, voice, channel))


@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_fluent_speech_gets_no_tag(voice):
    r = reading("fluent", voice)
    assert r.tags == () and not r.attention
    f = r.features
    assert f.phrases == 1 and f.pauses == 0 and 3.0 < f.articulation_rate < 7.0
    assert f.pitch_median_st is not None and f.hnr_db is not None and f.level_dbfs > -30


@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_speech_broken_by_breaths_is_breathless_and_raises_attention(voice):
    r = reading("breath", voice)
    tag = r.tag("breathless")
    assert tag is not None and tag.attention and tag.question_id == "general.breathing"
    fired = {e.feature for e in tag.evidence}
    assert {"pauses", "syllables_per_phrase", "words_per_phrase"} <= fired
    assert r.features.pauses >= 3 and r.features.words_per_phrase <= 3.5
    assert "breathless" in tag.explanation.lower() or "breath" in tag.label.lower()


def test_slowed_speech_is_tagged_against_the_callers_baseline():
    r = reading("slow", "espeak", TEXTS[0])
    tag = r.tag("slow_slurred")
    assert tag is not None and tag.attention and tag.question_id == "general.neuro"
    ratio = next(e for e in tag.evidence if e.feature == "articulation_rate_vs_baseline")
    assert ratio.value <= 0.7


def test_espeak_slurred_voice_is_tagged():
    r = reading("slurred", "espeak")
    assert r.tag("slow_slurred") is not None


@pytest.mark.parametrize(("cond", "voice"), [("quiet", "piper"), ("whisper", "espeak")])
def test_quiet_or_whispered_voice_is_weak_but_raises_no_attention(cond, voice):
    r = reading(cond, voice)
    tag = r.tag("weak_voice")
    assert tag is not None and not tag.attention and tag.question_id is None
    assert not r.attention


def test_agitated_voice_with_distress_words_is_high_distress():
    r = reading("agitated", "piper")
    tag = r.tag("distress")
    assert tag is not None and tag.grade == "high" and tag.attention
    kinds = {e.feature for e in tag.evidence}
    assert "words" in kinds and "pitch_median_st_vs_baseline" in kinds


@pytest.mark.parametrize("voice", ["piper", "espeak"])
def test_in_background_noise_breaths_still_break_the_speech_and_fluent_speech_is_not_slow(voice):
    """A steady background 15 dB under the voice (sox pink noise, also in the pauses): a frame is
    sounding only above the turn's own noise floor, or the noise fills the pauses (no phrases, no
    breathlessness) and counts as speaking time (fluent speech read as slow)."""
    fluent = reading("fluent", voice, channel="noise")
    assert fluent.tags == ()
    assert fluent.features.noise_floor_dbfs > -45 and fluent.features.phrases == 1
    breath = reading("breath", voice, channel="noise")
    assert breath.tag("breathless") is not None and breath.tag("slow_slurred") is None
    assert breath.features.pauses >= 3


def test_a_pitch_more_than_an_octave_over_the_baseline_is_not_distress():
    """The telephone band removes a low voice's fundamental and the tracker can lock onto a
    harmonic (+24 st measured on a fluent turn through the simulated phone line): not a raised
    voice. A raise within the octave still counts."""
    from dataclasses import replace

    tracker = AffectTracker()
    for i, b in enumerate(TEXTS[:2]):
        tracker.observe(i, *features("fluent", b))
    f, said = features("fluent", TEXTS[2])
    base = tracker.baseline.pitch_median_st
    assert AffectTracker().observe(0, f, said).tags == ()
    harmonic = tracker.observe(5, replace(f, pitch_median_st=base + 24.0), said)
    assert harmonic.tag("distress") is None
    raised = tracker.observe(6, replace(f, pitch_median_st=base + 5.0), said)
    assert [e.feature for e in raised.tag("distress").evidence][0] == "pitch_median_st_vs_baseline"


def test_distress_words_alone_and_their_negation():
    rule = default_affect_rules().tags["distress"]
    assert lexical_cues("Please hurry, I'm so scared", rule) == ["so scared", "please hurry"]
    assert lexical_cues("I'm not scared, it's just annoying", rule) == []
    assert lexical_cues("the baby won't stop crying and he can't settle", rule) == []  # a complaint
    assert lexical_cues("I'm in tears, I can't stop crying", rule) == ["i cant stop crying", "in tears"]
    tracker = AffectTracker()
    one = tracker.observe(1, None, "please hurry")
    assert one.tag("distress").grade == "present" and not one.attention  # one cue: shown, no flag
    two = tracker.observe(2, None, "please hurry I'm terrified")
    assert two.tag("distress").grade == "high" and two.attention


def test_a_tagged_turn_does_not_join_the_baseline():
    tracker = AffectTracker()
    tracker.observe(0, *features("breath", TEXTS[0]))
    assert tracker.baseline is None
    tracker.observe(1, *features("fluent", TEXTS[1]))
    assert tracker.baseline.turns == 1


def test_tags_never_set_or_change_the_level():
    """Every attention tag's question goes through TriageInterview.queue_question, the only path
    a tag has into the rules: the assessment is the same with and without it."""
    rules = default_affect_rules()
    statements = ["I've had a cough for a few days", "my chest feels a bit tight"]
    plain, tagged = TriageInterview(context=PatientContext()), TriageInterview(context=PatientContext())
    for text in statements:
        a = plain.observe_final(text)
        b = tagged.observe_final(text)
        for tag in rules.tags.values():
            if tag.question_id:
                tagged.queue_question(tag.question_id)
        b2 = tagged.assessment
        assert (a.level, a.disposition, a.escalate) == (b.level, b.disposition, b.escalate)
        assert (b2.level, b2.disposition, b2.escalate) == (a.level, a.disposition, a.escalate)
        plain.next_prompt()
        tagged.next_prompt()
    for t in reading("breath").tags:
        assert t.to_dict()["level"] is None


def test_the_loader_refuses_an_unknown_question(tmp_path):
    src = (E.ROOT / "clinical_rules" / "rulesets" / "default" / "affect.yaml").read_text()
    bad = tmp_path / "affect.yaml"
    bad.write_text(src.replace("question: general.breathing", "question: general.nope"))
    with pytest.raises(AffectRulesError, match="general.nope"):
        load_affect_rules(path=bad)
    rules = load_affect_rules()
    assert rules.tags["breathless"].question.startswith("Is there any severe difficulty breathing")
    assert all(t.provenance for t in rules.tags.values())


def test_simulate_prints_each_turns_reading():
    import io

    from evals.voice.simulate import SimulatedClient, print_report
    from voice.affect import AffectObserved
    from voice.events import FinalTranscript

    client = SimulatedClient()
    breath = reading("breath", "espeak")
    client.events += [
        FinalTranscript(5, TEXTS[2], -0.2, 0.01, 1.0, 4.0, 4.1),
        AffectObserved(5, breath, ("general.breathing",), 4.2),
    ]
    out = io.StringIO()
    print_report(client, out)
    line = next(x for x in out.getvalue().splitlines() if x.strip().startswith("how"))
    assert "(turn 5)" in line and "Breathless" in line and "pauses" in line
    assert "ATTENTION" in line and "asks general.breathing" in line and "ms CPU" in line


async def test_over_budget_or_disabled_the_turn_is_read_from_its_words(monkeypatch):
    """The runner never waits past its budget: the reading comes from the words alone."""
    import numpy as np

    from voice.affect_runner import AffectRunner

    got = []
    runner = AffectRunner(got.append, budget_s=0.0)  # nothing can be measured in 0 s
    audio = np.zeros(16000, dtype=np.float32)
    runner.turn_audio(1, audio, 16000)
    runner.turn_words(1, "please hurry I'm terrified", 3)
    await runner.wait_idle()
    assert runner.budget_misses == 1 and got[0].features is None
    assert got[0].tag("distress").grade == "high"  # the words still count
    monkeypatch.setenv("TRIAGE_AFFECT", "0")
    off = AffectRunner(got.append)
    off.turn_audio(2, audio, 16000)
    off.turn_words(2, "it is a bit sore", 4)
    runner.turn_words(3, "", 0)  # noise: no reading
    await off.wait_idle()
    await runner.wait_idle()
    assert [r.turn_id for r in got] == [1, 2] and got[1].features is None and got[1].tags == ()
