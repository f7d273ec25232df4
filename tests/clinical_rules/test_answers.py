"""Answer parsing from free speech: yes / no / unsure, numbers, durations, ages."""

import pytest

from clinical_rules import facts as F
from clinical_rules.answers import parse_answer
from clinical_rules.engine import analyse


def _yn(rs, text):
    return F.yes_no(rs.normaliser(text, drop_fillers=False), rs.answers, rs.fillers)


@pytest.mark.parametrize(
    "text,kind",
    [
        ("yes", "yes"), ("yeah it does", "yes"), ("uh huh", "yes"), ("mm hmm", "yes"), ("um yes I think so", "yes"),
        ("no", "no"), ("nope", "no"), ("no not really", "no"), ("I don't think so", "no"), ("nah", "no"),
        ("not sure", "unsure"), ("I'm not sure", "unsure"), ("maybe", "unsure"), ("I don't know", "unsure"),
        ("um well kind of", "unsure"),
    ],
)  # fmt: skip
def test_yes_no_unsure(rs, text, kind):
    assert _yn(rs, text)[0] == kind


def test_unparseable_yes_no(rs):
    assert _yn(rs, "the weather is nice") is None


@pytest.mark.parametrize(
    "text,value",
    [("seven", 7), ("about an eight", 8), ("8 out of 10", 8), ("eight or nine", 9), ("ten", 10), ("it's severe", 9),
     ("mild really", 3)],
)  # fmt: skip
def test_scale_answers(rs, text, value):
    res = parse_answer(rs, rs.questions["general.severity"], text, analyse(rs, text))
    assert res.status == "ok" and res.value == value


@pytest.mark.parametrize(
    "text,hours",
    [
        ("two days", 48), ("a couple of days", 48), ("a few hours", 3), ("since yesterday", 24),
        ("about three weeks", 504), ("half an hour", 0.5), ("since this morning", 6), ("for ages", 2000),
        ("a week ago", 168), ("an hour", 1), ("2 and a half days", 60),
    ],
)  # fmt: skip
def test_duration_answers(rs, text, hours):
    res = parse_answer(rs, rs.questions["general.onset"], text, analyse(rs, text))
    assert res.status == "ok" and res.value == pytest.approx(hours, rel=0.02)


@pytest.mark.parametrize(
    "text,band",
    [
        ("she's six weeks old", "under_3_months"), ("ten days", "under_3_months"), ("8 months", "3_months_to_2_years"),
        ("he's two", "2_to_11"), ("I'm 45", "18_to_64"), ("seventy two", "65_plus"), ("14", "12_to_17"),
        ("eighteen months", "3_months_to_2_years"), ("newborn", "under_3_months"),
    ],
)  # fmt: skip
def test_age_answers(rs, text, band):
    res = parse_answer(rs, rs.questions["general.age"], text, analyse(rs, text))
    assert res.status == "ok"
    assert dict((f.name, f.value) for f in res.facts)["age_band"] == band


def test_durations_in_statements_need_a_cue(rs):
    assert [v.value for v in F.durations(rs.normaliser("I've had a cough for three weeks"), rs.answers)] == [
        504
    ]
    assert F.durations(rs.normaliser("my 3 month old has a cough"), rs.answers) == []
    # "two years ago" dates history, not today's symptom
    assert F.durations(rs.normaliser("I had pneumonia two years ago"), rs.answers) == []


def test_number_words():
    words = "a hundred and two degrees thirty eight point five".split()
    assert [v.value for v in F.numbers(words)] == [102, 38.5]


def test_inverted_question_yes_is_reassuring(rs):
    q = rs.questions["gi.fluids"]  # "Are you able to keep fluids down?"
    res = parse_answer(rs, q, "yes", analyse(rs, "yes"))
    assert res.mentions[0].assertion == "negated"
    res = parse_answer(rs, q, "no I can't", analyse(rs, "no I can't"))
    assert res.mentions[0].assertion == "answered_yes"


def test_own_words_override_a_bare_no(rs):
    q = rs.questions["chest.radiation"]
    text = "no but it goes down my left arm"
    res = parse_answer(rs, q, text, analyse(rs, text))
    assert res.value == "yes"


def test_unsure_pregnancy_counts_as_possible(rs):
    q = rs.questions["general.pregnant"]
    res = parse_answer(rs, q, "I'm not sure", analyse(rs, "I'm not sure"), final_try=True)
    assert dict((f.name, f.value) for f in res.facts)["pregnant"] is True
    res = parse_answer(rs, q, "no I'm a man", analyse(rs, "no I'm a man"))
    assert dict((f.name, f.value) for f in res.facts)["pregnant"] is False
