"""Families blind round 25 exposed (rule set 2026.12.15), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are O501-O548 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}


# ---------------------------------------------------------------- a. "not able to" and Scots negatives
@pytest.mark.parametrize(
    ("text", "worst"),
    [
        ("my father is diabetic, he is sweating and I am not able to wake him properly", 1),
        ("she is not able to speak properly since one hour and her face is looking different", 1),
        ("he cannae stand up and he cannae get his words out since this morning", 2),
        ("she wasnae able to lift her arm and she didnae make any sense when she talked", 2),
    ],
)
def test_a_not_able_to_and_cannae_are_cant(rs, text, worst):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= worst, a.reasons


def test_a_guard_a_negated_symptom_in_scots_stays_negated(rs):
    level, a = _level(
        rs, "I've a sore throat but I'm no struggling to breathe and I didnae have a temperature", ADULT
    )
    assert level is not None and level >= 4, a.reasons


# ---------------------------------------------------------------- b. a posterior stroke in other words
@pytest.mark.parametrize(
    "text",
    [
        "the room's been birling since lunch and I'm seeing two of everything",
        "he's dizzy and he sounds like he's had a drink but he hasn't touched a drop",
    ],
)
def test_b_vertigo_with_double_vision_or_drunk_sounding_speech_is_an_emergency(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. limb ischaemia with the colour said apart
@pytest.mark.parametrize(
    "text",
    [
        "my right hand went cold and numb about an hour ago, and now it's gone a funny blue colour and it hurts",
        "his foot is icy cold since this morning. It looks a horrible mottled colour and he's in a lot of pain",
    ],
)
def test_c_a_cold_limb_that_changed_colour_and_hurts_is_an_emergency(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. reflux said as chest burning
@pytest.mark.parametrize(
    "text",
    [
        "I get a burning in my chest after my tea most evenings, the Gaviscon sorts it, never when I'm walking the dog",
        "burning behind my breastbone when I lie down after eating, Rennies help, it doesn't happen when I'm exercising",
    ],
)
def test_d_reflux_pattern_chest_burning_is_routine(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        (
            "burning in my chest after dinner, Gaviscon helps, never when walking, but I'm sweating and breathless tonight",
            ADULT,
        ),
        ("burning in my chest after dinner, Gaviscon helps, it never comes when I'm walking", ELDER),
        (
            "I'm diabetic and get a burning in my chest after meals, Rennies help, never when I'm gardening",
            ADULT,
        ),
        (
            "burning in my chest after eating that comes on when I walk up the hill, Gaviscon helps a bit",
            ADULT,
        ),
    ],
)
def test_d_guard_warning_signs_age_diabetes_or_exertion_keep_it_chest_pain(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. testicle misheard
def test_e_testicle_misheard_reaches_the_rules(rs):
    level, a = _level(
        rs,
        "he's 14, he's got sudden bad pain in his right test a call and he's been sick",
        {"subject": "child", "age_band": "12_to_17"},
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. pre-eclampsia in other words
@pytest.mark.parametrize(
    "text",
    [
        "I'm 35 weeks pregnant with a bad headache and I keep seeing shimmering lights",
        "I'm 33 weeks pregnant, headache all day and my fingers are so puffy my rings won't come off",
    ],
)
def test_f_pre_eclampsia_signs_in_other_words_are_an_emergency(rs, text):
    level, a = _level(rs, text, {"age_band": "18_to_64", "pregnant": True})
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- g. an intensifier before the adverb (spoken dev run)
@pytest.mark.parametrize(
    "text",
    [
        "I had the baby last week and now I'm bleeding really heavily and I feel faint",
        "he cut his arm on the glass and it's bleeding so badly I can't stop it",
    ],
)
def test_g_bleeding_really_heavily_is_heavy_bleeding(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons
