"""Families blind round 23 exposed (rule set 2026.12.13), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are A301-A348 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
CHILD = {"subject": "child", "age_band": "2_to_11"}
BABY = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. bleeding after a tonsillectomy
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("my son had his tonsils taken out five days ago and he's coughing up bright red blood", CHILD),
        ("I had a tonsillectomy last week and I keep spitting out blood clots", ADULT),
    ],
)
def test_a_bleeding_after_a_tonsillectomy_is_an_emergency(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1 and a.escalate, a.reasons


def test_a_guard_a_sore_throat_after_a_tonsillectomy_is_not_an_emergency(rs):
    level, a = _level(
        rs,
        "she had her tonsils out a week ago and her throat is still really sore, she's eating ice cream",
        CHILD,
    )
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- b. adrenal crisis
@pytest.mark.parametrize(
    ("text", "worst"),
    [
        ("I've got Addison's and I've been sick all night, I can't keep my hydrocortisone down", 2),
        (
            "my husband has adrenal insufficiency, he's been vomiting and now he's confused and really drowsy",
            1,
        ),
        ("she's got add a sons disease, she's been throwing up her tablets since this morning", 2),
    ],
)
def test_b_vomiting_or_drowsiness_with_adrenal_insufficiency_is_an_emergency(rs, text, worst):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= worst and a.escalate, a.reasons


# ---------------------------------------------------------------- c. missed dialysis in other words
def test_c_dialysis_sessions_missed_said_in_caribbean_english(rs):
    text = "my auntie on dialysis, she miss she last session, now she legs weak and she heart going funny"
    level, a = _level(rs, text, ELDER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. a hand numb at night is a trapped nerve
@pytest.mark.parametrize(
    "text",
    [
        "my left hand keeps going numb in the night, I shake it and it comes back, no weakness",
        "my fingers keep going tingly when I wake up, it goes off when I shake my hand, been weeks",
    ],
)
def test_d_a_hand_that_keeps_going_numb_at_night_is_not_a_stroke(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 4, a.reasons


def test_d_guard_a_numb_hand_with_a_drooping_face_is_a_stroke(rs):
    level, a = _level(
        rs, "my right hand keeps going numb and I can't grip anything and my face has dropped", ELDER
    )
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. hay fever said as an allergic reaction
@pytest.mark.parametrize(
    "text",
    [
        "I think I'm allergic to something, I can't stop sneezing and my eyes are streaming since they mowed the field, breathing's fine",
        "allergic reaction to the pollen I reckon, itchy eyes and a runny nose, no swelling",
    ],
)
def test_e_hay_fever_is_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm having an allergic reaction, sneezing and itchy eyes and now my lips are swelling up",
        "allergic to the grass, itchy eyes, and now I'm wheezy and struggling to breathe",
    ],
)
def test_e_guard_swelling_or_breathing_trouble_is_not_hay_fever(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- f. objects up noses, babies' nappies, knees
def test_f_something_pushed_up_a_childs_nose_is_seen_within_hours(rs):
    level, a = _level(
        rs, "my daughter's three and she's shoved a pea up her nostril, she's fine otherwise", CHILD
    )
    assert level == 3, a.reasons


def test_f_a_well_babys_green_poo_is_self_care(rs):
    level, a = _level(
        rs, "my baby's five months old and his poo is green and seedy but he's feeding well and happy", BABY
    )
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my baby's five months old and her poo is green and she's got a temperature and won't feed",
        "my baby's five months old and there's green poo with blood in her nappy",
    ],
)
def test_f_guard_a_baby_with_fever_poor_feeding_or_blood_is_not_self_care(rs, text):
    level, a = _level(rs, text, BABY)
    assert level is not None and level <= 4, a.reasons


def test_f_knee_pain_at_the_front_when_running_gets_a_level(rs):
    level, a = _level(
        rs, "I get pain at the front of my knee when I go down stairs, a few weeks now, no swelling", ADULT
    )
    assert level in (4, 5), a.reasons
