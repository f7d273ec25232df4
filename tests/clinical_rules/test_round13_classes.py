"""Classes blind round 13 exposed (rule set 2026.12.3), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are Y001-Y048 in dev.yaml).

Safety classes assert "at least" (a level this urgent or more); benign look-alikes and routine
gaps assert the exact level; each class has at least three wordings.
"""

import pytest

from clinical_rules import PatientContext, assess

CHILD = {"subject": "child"}
OTHER = {"subject": "other"}


def _level(rs, text, ctx):
    a = assess([text], context=PatientContext(**ctx), ruleset=rs)
    return (int(a.level) if a.level is not None else None), a


# ---------------------------------------------------------------- safety: at least this urgent
AT_LEAST = [
    # a. a real red flag after a list of denials still counts (the denials do not reach it)
    (
        "list_then_flag",
        "I've got a headache, no temperature, no rash, but my neck is really stiff and I've got a fever",
        {},
        1,
    ),
    (
        "list_then_flag",
        "I've had a headache, no rash, no vomiting, and now I've got a stiff neck and a temperature of 39",
        {},
        1,
    ),
    ("list_then_flag", "no cough, no cold, but I've got crushing chest pain going down my left arm", {}, 1),
    # b. stroke in lay or misheard words (BE-FAST), with the caller minimising
    (
        "stroke_lay",
        "my dad's 74, since this afternoon his words are coming out muddled and he keeps dropping things from his left hand, he says he's just tired",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my mum's 80 and suddenly her left hand has gone clumsy, she can't do her buttons, she says she's fine just tired",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my grandad's face looks a bit lopsided and his words are coming out wrong, he says he's fine",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "since lunch my father keeps losing grip of his fork with his left hand and his mouth looks a bit wonky",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my husband is talking gibberish and his sentences are coming out in the wrong order",
        OTHER,
        1,
    ),
    # c. atypical heart attack (AHA): indigestion-like or odd heavy feeling with effort and company
    (
        "atypical_mi",
        "I'm 58 and diabetic, walking up the hill I got an odd heavy feeling in my chest and my jaw aches, I feel clammy",
        {},
        1,
    ),
    (
        "atypical_mi",
        "my mum is 67, she's had an indigestion feeling since she carried the shopping in, with an ache between her shoulder blades and she's grey and sweaty",
        OTHER,
        1,
    ),
    (
        "atypical_mi",
        "I'm a 49 year old woman, I got a strange heaviness when I was gardening, now my left arm aches and I'm exhausted and breathless",
        {},
        1,
    ),
    (
        "atypical_mi",
        "I'm 62, I just don't feel right, there's a funny feeling in my chest like indigestion that came on climbing the stairs, and I'm clammy",
        {},
        1,
    ),
    (
        "atypical_mi_any_age",
        "I got an indigestion feeling when I was running for the bus and now I'm sweaty and breathless",
        {},
        2,
    ),
    ("atypical_mi_any_age", "a heavy feeling in my chest came on walking up the hill and I feel off", {}, 2),
    (
        "atypical_mi_any_age",
        "I was digging the garden and got a weird indigestion feeling with an ache in my jaw",
        {},
        2,
    ),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "at_least"), AT_LEAST, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(AT_LEAST)]
)
def test_red_flag_classes_reach_their_level(rs, cls, text, ctx, at_least):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= at_least, (level, a.rule_ids)


# ---------------------------------------------------------------- exact level
EXACT = [
    # a. every item in a list of denials is negated; a denial of "worst" is not a denial of the headache
    (
        "list_denials",
        "I've got a headache since this morning, no fever or rash or stiff neck, it's not the worst I've ever had",
        {},
        4,
    ),
    (
        "list_denials",
        "headache for two days, no high temperature, no neck stiffness, no problem with light, not the worst headache ever",
        {},
        4,
    ),
    (
        "list_denials",
        "it's not the worst headache I've ever had but it's annoying, no stiff neck, no temperature",
        {},
        4,
    ),
    # b. clumsiness without a side or a sudden change is not a stroke sign
    ("not_stroke", "I'm a bit clumsy, I dropped a cup this morning", {}, None),
    ("not_stroke", "my son is clumsy and keeps dropping things, he's 7", CHILD, None),
    ("not_stroke", "I keep dropping my phone, I'm so clumsy", {}, None),
    # c. ordinary indigestion after food, no effort, no company: not a heart attack
    (
        "indigestion",
        "I'm 45, I've got that indigestion feeling after my dinner, burping a lot, I feel fine otherwise",
        {},
        5,
    ),
    (
        "indigestion",
        "I'm 50 and I get a heavy feeling in my stomach after big meals, a bit bloated, no other problems",
        {},
        5,
    ),
    ("indigestion", "I'm 60, indigestion feeling after a curry last night, gaviscon sorted it", {}, 5),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "expected"), EXACT, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(EXACT)]
)
def test_lookalikes_and_routine_get_their_level(rs, cls, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, (level, a.rule_ids)


def test_every_class_has_at_least_three_wordings():
    counts: dict[str, int] = {}
    for cls, *_rest in AT_LEAST + EXACT:
        counts[cls] = counts.get(cls, 0) + 1
    assert all(n >= 3 for n in counts.values()), counts
