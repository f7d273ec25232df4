"""Families blind round 19 exposed (rule set 2026.12.9), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are J901-J948 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other"}


# ---------------------------------------------------------------- a. an indirect goodbye
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        (
            "my brother texted me saying sorry for everything and to look after mum, and he's not answering",
            OTHER,
        ),
        ("my friend sent me a goodbye message and she has a load of tablets, she's not picking up", OTHER),
        ("he said he won't be a burden to anyone anymore and he's got his dad's pills", OTHER),
        ("I've sorted all my affairs out and I've got the pills ready, I won't be a burden anymore", ADULT),
    ],
)
def test_a_an_indirect_goodbye_is_level_1(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1, a.reasons
    assert a.escalate


def test_a_guard_a_burden_said_about_chores_is_not_a_crisis(rs):
    level, a = _level(
        rs, "I don't want to be a burden on my daughter with the shopping, my knee is sore", ADULT
    )
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- b. a low home oxygen reading
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("my mum's got covid, she says she's fine but the finger monitor says 89", OTHER),
        ("my sats are 90 on my oximeter and I'm a bit breathless", ADULT),
        ("the oxygen level on his pulse oximeter keeps reading 87", OTHER),
        ("I feel okay but my oxygen is eighty eight on the monitor", ADULT),
    ],
)
def test_b_oxygen_91_or_lower_is_an_emergency(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= 2, a.reasons


def test_b_guard_a_normal_reading_is_not(rs):
    level, a = _level(rs, "my oxygen monitor says 98 and I feel fine, just a cold", ADULT)
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- c. necrotising soft-tissue infection
@pytest.mark.parametrize(
    "text",
    [
        "I cut my leg two days ago and the pain is way worse than it looks, I feel awful",
        "small graze on my arm but the skin round it is going purple and dusky and I feel rough",
        "I'm diabetic, a scratch on my foot, the pain is unbearable and the skin is turning grey",
        "a little cut on my thigh and now the pain's off the scale and it's gone dark purple",
    ],
)
def test_c_pain_out_of_proportion_or_dusky_skin_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. everyday conditions, right level
@pytest.mark.parametrize(
    ("text", "ctx", "expected"),
    [
        (
            "we were skiing and my fingertips went white and numb in the cold, now they're blistering",
            ADULT,
            3,
        ),
        (
            "my daughter is four and she's been limping since this morning, no fall",
            {"subject": "child", "age_band": "2_to_11"},
            3,
        ),
        (
            "I'm 40, burning in my chest after meals for a few weeks, Gaviscon helps, no other symptoms",
            ADULT,
            4,
        ),
        (
            "I got dizzy gardening in the heat but I've had lots of water and I'm feeling loads better now",
            ADULT,
            5,
        ),
        (
            "my baby's ten months, chewing on everything and red cheeks, feeding fine",
            {"subject": "child", "age_band": "3_months_to_2_years"},
            5,
        ),
        ("I'm running out of my statins and my blood pressure tablets next week", ADULT, 4),
        ("a bee stung my arm, I scraped the sting out, it's a bit red, no swelling in my face", ADULT, 5),
    ],
)
def test_d_everyday_conditions_get_their_level(rs, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "our cat got a bit grumpy and scratched my hand, just a scratch",
        "the dog was a bit excited and jumped up, no bite",
    ],
)
def test_d_guard_a_bit_is_not_a_bite(rs, text):
    level, a = _level(rs, text, ADULT)
    assert "URG-BITE-002" not in a.rule_ids, a.reasons
