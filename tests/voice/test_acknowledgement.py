"""One natural acknowledgement at most (issue 12, part 2).

* ``choose_acknowledgement`` fits what was said, varies across turns, and every phrase passes
  the guardrail's acknowledgement rules.
* Scripted conversations through the session (real VAD, endpointing, rules, Piper, phrase
  cache): never two acknowledgements in a row, consecutive turns do not repeat one, and the
  rules' question follows the acknowledgement directly. The model is a TEST DOUBLE
  (``HabitualAckModel``) with the bundled 0.5B model's habit of opening every reply with
  "Okay, thank you for letting me know." (what doubled "Okay. Okay, thank you ..."); with
  ``ack_source="phrases"`` (the default) it must never be asked, with ``"model"`` its
  acknowledgement is the only one. The recognizer is a TEST DOUBLE too (``ScriptedHearing``:
  it "hears" the line the test is speaking), so each turn's words are exact.
* An emergency found only in the final words (no partial carried them, so nothing was
  speculated) leads with the fixed script, with no acknowledgement before it.
"""

from __future__ import annotations

import asyncio

import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer, ScriptedTokenStream
from tests.speech import speech_pcm16k
from voice.acknowledgement import DEFAULT_SET, NONE, AcknowledgementSet, choose_acknowledgement
from voice.config import PipelineConfig
from voice.events import AgentReplyFinished, AgentReplyStarted, AgentText
from voice.llm.guardrail import GuardrailConfig
from voice.pipeline import VoiceSession

ACKS = set(DEFAULT_SET.phrases())


# --- choosing ---------------------------------------------------------------------------------


def test_every_phrase_passes_the_guardrail_acknowledgement_rules():
    rules = GuardrailConfig()
    for phrase in DEFAULT_SET.phrases():
        for said in ("I have had a headache since this morning.", "Yes.", ""):
            assert rules.ack_problem(phrase, said) is None, phrase


def test_the_acknowledgement_fits_what_was_said():
    assert choose_acknowledgement("My chest hurts when I breathe in.", []) in DEFAULT_SET.sympathy
    assert choose_acknowledgement("No.", []) in DEFAULT_SET.short
    assert choose_acknowledgement("About two days.", []) in DEFAULT_SET.short
    assert (
        choose_acknowledgement("It started on Monday after we came back from my parents' house.", [])
        in DEFAULT_SET.account
    )
    assert choose_acknowledgement(None, []) in DEFAULT_SET.short  # words not known yet


def test_consecutive_turns_do_not_repeat_and_the_choice_is_deterministic():
    recent: list[str] = []
    for said in ["No.", "Yes.", "Two days.", "No.", "Yes, it is.", "Not really."]:
        ack = choose_acknowledgement(said, recent)
        assert ack == choose_acknowledgement(said, list(recent))
        assert not recent or ack != recent[-1]
        recent.append(ack)
    assert len(set(recent)) >= 3
    # one configured phrase: that phrase every time (nothing else to vary with)
    assert choose_acknowledgement("No.", ["Okay."], AcknowledgementSet.from_phrases(["Okay."])) == "Okay."


def test_a_ready_question_leads_every_other_brief_answer():
    # The question is ready at the endpoint (may_omit): after a reply that opened with an
    # acknowledgement, a brief answer gets none; the one after that gets one again.
    assert choose_acknowledgement("No.", ["I'm sorry."], may_omit=True) is None
    assert choose_acknowledgement("No.", ["I'm sorry.", NONE], may_omit=True) in DEFAULT_SET.short
    assert choose_acknowledgement("No.", [], may_omit=True) in DEFAULT_SET.short  # nothing said yet
    # never omitted: a wait to fill (not may_omit), distress words, a longer account, words unknown
    assert choose_acknowledgement("No.", ["Okay."]) in DEFAULT_SET.short
    assert choose_acknowledgement("Yes, it hurts.", ["Okay."], may_omit=True) in DEFAULT_SET.sympathy
    long_answer = "It started on Monday after we came back from my parents' house."
    assert choose_acknowledgement(long_answer, ["Okay."], may_omit=True) in DEFAULT_SET.account
    assert choose_acknowledgement(None, ["Okay."], may_omit=True) in DEFAULT_SET.short
    # a reply without one does not count as a phrase spoken: rotation skips over it
    assert choose_acknowledgement("Two days.", ["Okay.", NONE], may_omit=True) != "Okay."


def test_every_phrase_is_short():
    # Each plays before the question (answer heard): none of the long ones that held it back
    # ("I'm sorry to hear that.", 1.1 s; "Thanks for telling me.").
    for phrase in DEFAULT_SET.phrases():
        assert len(phrase.split()) <= 3, phrase


# --- scripted conversations through the session ------------------------------------------------


class ScriptedHearing(ScriptedRecognizer):
    """TEST DOUBLE recognizer: every decode "hears" ``line`` (partials hear nothing when
    ``silent_partials``, so red flags can only come from the final words)."""

    def __init__(self):
        super().__init__(lambda _seconds, partial: "" if partial and self.silent_partials else self.line)
        self.line = ""
        self.silent_partials = False


class HabitualAckModel:
    """TEST DOUBLE ReplyGenerator: opens every reply with "Okay, thank you for letting me
    know." and then the required text, like the bundled model often does."""

    name = "habitual-ack-fake"
    saturated = False

    def __init__(self):
        self.calls = 0

    def stream(self, messages, *, max_tokens=64, temperature=0.2):
        self.calls += 1
        required = messages[-1].content.split('REQUIRED text: "', 1)[1].rstrip('"')
        text = "Okay, thank you for letting me know. " + required
        return ScriptedTokenStream([p + " " for p in text.split()], delay_s=0.01)


CONVERSATIONS = [
    ["I have had a headache since this morning.", "No.", "About two days."],
    ["My throat has been sore for two days, and it hurts to swallow.", "No.", "Yes."],
    ["I twisted my ankle at football and it is swollen.", "Yes, I can.", "Not really."],
]


async def _converse(session, client, rec, lines) -> list[int]:
    """Speak each line; return the reply id of each turn's answer."""
    replies = []
    for line in lines:
        rec.line = line
        # The turn's answer is the next reply that played to its end: under load a speculative
        # reply can start at a pause and be discarded (interrupted, never heard) before it.
        n = len(client.of(AgentReplyFinished))
        fut = asyncio.ensure_future(
            client.wait_for(
                lambda e, n=n: any(not f.interrupted for f in client.of(AgentReplyFinished)[n:]), 30
            )
        )
        await stream_pcm(session, speech_pcm16k(line))
        i = 0
        while not fut.done():
            await stream_pcm(session, comfort_noise(100, seed=i), stop=fut.done)
            i += 1
        finished = next(f for f in client.of(AgentReplyFinished)[n:] if not f.interrupted)
        replies.append(finished.reply_id)
        if session.state == "escalated":
            break
    return replies


def _policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


async def _run(config: PipelineConfig, conversations, *, silent_partials=False):
    rec, model = ScriptedHearing(), HabitualAckModel()
    rec.silent_partials = silent_partials
    runtime = FakeRuntime(config, rec, generator=model)
    spoken: list[tuple[list[AgentText], AgentReplyStarted]] = []
    try:
        for lines in conversations:
            client = SimulatedClient(instant_playback=True)
            session = VoiceSession(runtime, _policy(), client.emit, config)
            client.attach(session)
            await session.start()
            await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
            try:
                for reply_id in await _converse(session, client, rec, lines):
                    texts = [e for e in client.of(AgentText) if e.reply_id == reply_id]
                    started = next(e for e in client.of(AgentReplyStarted) if e.reply_id == reply_id)
                    spoken.append((texts, started))
            finally:
                await session.end("test")
                client.close()
    finally:
        runtime.compute.close()
    return spoken, model


def _is_ack(text: AgentText) -> bool:
    return text.text in ACKS or text.source == "llm" or text.text.lower().startswith(("okay", "thank"))


@pytest.mark.models
@pytest.mark.timeout(300)
async def test_no_doubled_acknowledgement_over_scripted_conversations():
    spoken, model = await _run(PipelineConfig(llm_backend="none"), CONVERSATIONS)
    assert model.calls == 0  # the rules' words are spoken: the model is never asked for an acknowledgement
    assert len(spoken) >= 8
    previous_ack, led = None, 0
    for k, (texts, _started) in enumerate(spoken):
        words = [t.text for t in texts]
        assert texts, words
        if texts[0].text in ACKS:  # one acknowledgement leads ...
            assert len(texts) >= 2 and not any(_is_ack(t) for t in texts[1:]), words  # ... and only one
            assert texts[1].source in ("cached", "rules"), words  # the rules' words follow it directly
            assert texts[0].text != previous_ack, words  # and it is not the last turn's again
            previous_ack = texts[0].text
        else:  # or the question leads (a brief answer after a reply that had one)
            assert not any(_is_ack(t) for t in texts), words
            assert texts[0].source in ("cached", "rules") and texts[0].answer, words
            assert k > 0 and spoken[k - 1][0][0].text in ACKS, words  # never twice in a row
            led += 1
    assert led >= 1  # each conversation's brief answers let the question lead at least once


@pytest.mark.models
@pytest.mark.timeout(300)
async def test_with_the_model_acknowledging_its_acknowledgement_is_the_only_one():
    config = PipelineConfig(llm_backend="none", ack_source="model")
    spoken, model = await _run(config, CONVERSATIONS[:1])
    assert model.calls >= 1
    for texts, _ in spoken:
        words = [t.text for t in texts]
        acks = [t for t in texts if _is_ack(t)]
        assert len(acks) <= 1 and (not acks or texts[0] is acks[0]), words


@pytest.mark.models
@pytest.mark.timeout(300)
async def test_an_emergency_in_the_final_words_leads_with_the_script_and_no_filler():
    line = "My husband's face is drooping on one side and he cannot lift his arm."
    spoken, _ = await _run(PipelineConfig(llm_backend="none"), [[line]], silent_partials=True)
    ((texts, started),) = spoken
    words = [t.text for t in texts]
    assert started.kind == "emergency", (started.kind, words)
    assert not any(t.text in ACKS for t in texts), words
    assert all(t.source in ("cached", "script") for t in texts), words
