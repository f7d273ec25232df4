"""Families blind round 33 exposed (scored once at rule set 2026.12.24, fixed in 2026.12.25), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AI301-AI348 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
PREGNANT = {"age_band": "18_to_64", "pregnant": True}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. suicide told by its final acts
@pytest.mark.parametrize(
    "text",
    [
        "I've put all my pills out on the kitchen table and written a letter to my son, I just wanted to talk to someone before",
        "my tablets are laid out on the bed, I've left notes for me kids",
    ],
)
def test_a_the_final_acts_of_a_suicide_plan_are_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- b. a fear of dying is not a wish to
def test_b_convinced_it_is_cancer_and_going_to_die_is_fear_not_suicide(rs):
    level, a = _level(
        rs, "I found a lump in my neck and I'm convinced it's cancer and I'm going to die", ADULT
    )
    assert "RF-MH-001" not in {f.rule_id for f in a.reasons}, a.reasons


@pytest.mark.parametrize("text", ["I want to die, I can't go on", "I'm going to kill myself tonight"])
def test_b_guard_a_wish_to_die_still_escalates(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- c. recognizer spellings of the key word
@pytest.mark.parametrize(
    ("text", "ctx", "worst"),
    [
        ("i took a load of para citamol last night about twenty of them i feel ok now", ADULT, 2),
        ("the baby hasnt mood since this morning and im thirty four weeks", PREGNANT, 2),
        (
            "my eye is really painful and red and the street lights have rain bows round them and I feel sick",
            ADULT,
            2,
        ),
    ],
)
def test_c_the_key_word_misheard_still_reaches_its_level(rs, text, ctx, worst):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= worst, a.reasons


# ---------------------------------------------------------------- d. a fear said as a figure
def test_d_worried_about_a_heart_attack_after_a_raised_reading_is_not_one(rs):
    level, a = _level(
        rs,
        "my blood pressure was 150 over 95 at the pharmacy and I'm scared I'm going to have a heart attack, I feel fine",
        ADULT,
    )
    assert level is not None and level >= 3, a.reasons


def test_d_guard_i_think_im_having_a_heart_attack_escalates(rs):
    level, a = _level(rs, "I think I'm having a heart attack, my chest is tight", ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. Scots "wee" and base-verb nosebleeds
def test_e_a_wee_bit_of_a_sore_throat_is_not_a_urinary_symptom(rs):
    level, a = _level(rs, "streaming nose and a wee bit of a sore throat since Sunday", ADULT)
    assert "URG-GU-001" not in {f.rule_id for f in a.reasons}, a.reasons


def test_e_blood_come_from_the_nose_and_it_stop_is_self_care(rs):
    level, a = _level(
        rs, "blood come from his nose a lot but I press it and now it stop, he is playing", SCHOOL
    )
    assert level == 5, a.reasons
