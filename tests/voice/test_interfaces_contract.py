"""voice/interfaces.py is the real contract (issue 16): every member a protocol declares is what
the pipeline uses, and the production parts have all of it (the pipeline probes for nothing).
``TriageInterview.fork``/``restore`` are checked by what speculation and joined turns need of them."""

from __future__ import annotations

import typing

import pytest

from clinical_rules import PatientContext, TriageInterview
from tests.fakes import piper_synthesizer
from voice import interfaces
from voice.asr import WhisperRecognizer


def members(protocol: type) -> set[str]:
    """The attributes and methods a Protocol class declares itself."""
    declared = set(typing.get_type_hints(protocol, include_extras=False)) | {
        name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")
    }
    return declared


def interview() -> TriageInterview:
    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


def test_the_interview_has_everything_the_policy_protocol_declares():
    declared = members(interfaces.DialoguePolicy)
    assert {
        "context",
        "opening",
        "observe_final",
        "next_prompt",
        "queue_question",
        "fork",
        "restore",
    } <= declared
    policy = interview()
    assert {name for name in declared if not hasattr(policy, name)} == set()
    assessment = policy.observe_final("I have crushing chest pain")
    assert {name for name in members(interfaces.Assessment) if not hasattr(assessment, name)} == set()
    assert assessment.escalate and assessment.next_question.fixed, "the script comes with the assessment"


@pytest.mark.models
def test_the_production_recognizer_and_voice_have_what_the_pipeline_uses():
    assert {"sample_rate", "supports_partial", "transcribe"} <= members(interfaces.SpeechRecognizer)
    assert {
        name for name in members(interfaces.SpeechRecognizer) if not hasattr(WhisperRecognizer, name)
    } == set()
    assert WhisperRecognizer.supports_partial is True
    declared = members(interfaces.SpeechSynthesizer)
    assert {"sample_rate", "identity", "synthesize", "synthesize_pcm"} <= declared
    voice = piper_synthesizer()
    assert {name for name in declared if not hasattr(voice, name)} == set()
    assert voice.identity and len(voice.synthesize_pcm("Okay.", 16000)) > 1000


def test_a_fork_is_fed_without_touching_the_policy_and_restore_puts_it_back():
    policy = interview()
    policy.observe_final("I have had a headache since this morning.")
    asked = policy.next_prompt()
    before = policy.assessment.to_dict()

    # Speculation: the copy hears a final that is never confirmed.
    shadow = policy.fork()
    assert shadow is not policy and shadow.ruleset is policy.ruleset and shadow.context is policy.context
    shadow.observe_final("It is the worst headache of my life and my neck is stiff.")
    assert shadow.assessment.to_dict() != before
    assert policy.assessment.to_dict() == before, "the real policy only hears confirmed finals"

    # A joined turn: roll the real policy back, in place, to before a fragment's final.
    snapshot = policy.fork()
    policy.observe_final("Yes.")
    follow_up = policy.next_prompt()
    policy.restore(snapshot)
    assert policy.assessment.to_dict() == before
    again = policy.fork()
    again.observe_final("Yes.")
    assert again.next_prompt() == follow_up, "restored: the same words lead to the same question"
    assert asked is not None


def test_queue_question_asks_a_known_question_once_and_refuses_an_unknown_one():
    policy = interview()
    question = next(iter(policy.ruleset.questions))
    assert policy.queue_question("not_a_question") is False
    assert policy.queue_question(question) is True
    assert policy.queue_question(question) is False, "queued already"


def test_the_session_implements_every_recognition_hook():
    """Recognition (voice/recognition.py) reports only through RecognitionHooks: the session has
    every hook, and recognition calls no other member of it."""
    import ast
    import inspect

    from voice import recognition
    from voice.pipeline import VoiceSession

    declared = members(recognition.RecognitionHooks)
    assert {"on_speech_started", "on_partial", "on_end_of_turn", "escalation_pending"} <= declared
    assert all(callable(getattr(VoiceSession, name, None)) for name in declared)
    used = {
        node.attr
        for node in ast.walk(ast.parse(inspect.getsource(recognition.AudioRecognition)))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "hooks"
    }
    assert used and used <= declared
