"""Empty, garbled, non-English, huge or odd input: never a crash, always a safe result."""

import time

import pytest

from clinical_rules import TriageInterview, UrgencyLevel, assess


@pytest.mark.parametrize(
    "text",
    ["", "   ", "...", "um uh er", "asdkj qwpoe zxmnb", "12345 67890", "🙂🙂🙂", "\x00\x01\x02",
     "tengo dolor de cabeza muy fuerte", "j'ai mal à la tête", "我头疼", "ألم في الصدر"],
)  # fmt: skip
def test_unrecognised_input_asks_again(rs, text):
    a = assess([text], ruleset=rs)
    assert a.level is None and not a.escalate
    assert a.next_question is not None and a.next_question.kind == "clarify"
    assert not a.understood or a.level is None


def test_none_and_non_string_items(rs):
    assert assess(None, ruleset=rs).level is None  # type: ignore[arg-type]
    assert assess([], ruleset=rs).level is None
    a = assess(["my face is drooping", 42, None], ruleset=rs)  # type: ignore[list-item]
    assert a.escalate


def test_very_long_transcript_is_safe_and_keeps_recent_words(rs):
    filler = "and then we went to the shops and had a cup of tea " * 2000  # ~26,000 words
    t = time.perf_counter()
    a = assess([filler + "and now my face is drooping on one side"], ruleset=rs)
    assert time.perf_counter() - t < 5.0
    assert a.escalate


def test_very_long_partial_in_interview(rs):
    iv = TriageInterview(ruleset=rs)
    a = iv.observe_partial("la " * 50_000)
    assert a.level is None
    iv.observe_final("x" * 100_000)
    assert iv.next_prompt().kind == "clarify"


def test_red_flag_in_long_rambling_call_is_found(rs):
    ramble = " ".join(["so anyway we were talking about the garden and the weather"] * 30)
    a = assess([ramble + " and then I got this crushing pain in my chest " + ramble], ruleset=rs)
    assert a.level == UrgencyLevel.CALL_EMERGENCY_SERVICES


def test_punctuation_and_case_do_not_matter(rs):
    for text in ("MY FACE IS DROOPING!!!", "my face... is drooping?", "My-face is drooping"):
        assert assess([text], ruleset=rs).escalate, text


def test_interview_ignores_calls_after_it_finished(rs):
    iv = TriageInterview(ruleset=rs)
    iv.observe_final("I've got a bit of a cold")
    while not iv.finished:
        p = iv.next_prompt()
        if not iv.finished:  # reassuring answers ("yes, I can swallow")
            iv.observe_final("yes" if rs.questions[p.question_id].inverted else "no")
    assert iv.observe_final("thanks bye").level == UrgencyLevel.SELF_CARE
    assert iv.next_prompt().kind == "closing"
