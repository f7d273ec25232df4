"""Families blind round 41 exposed (scored once at rule set 2026.12.32, fixed in 2026.12.33), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AR001-AR048 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TEEN = {"subject": "other", "age_band": "12_to_17"}


# ---------------------------------------------------------------- a. emergencies in lay images
def test_a_back_pain_that_came_on_like_something_tore_is_a_999_call(rs):
    level, a = _level(
        rs,
        "my husband's seventy, sudden terrible pain in his back, he says it felt like something ripped, he's grey and sweaty",
        ELDER,
    )
    assert level == 1, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "she ate a cashew and her lips have gone like balloons and she's wheezy",
        "after the prawns his lips went massive and his throat feels funny",
    ],
)
def test_a_lips_gone_massive_after_a_trigger_with_a_breathing_sign_is_999(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


def test_a_a_sore_on_a_diabetics_foot_is_same_day(rs):
    level, a = _level(
        rs, "I'm diabetic and there's a sore under my little toe that's started to smell", ADULT
    )
    assert level is not None and level <= 3, a.reasons


def test_a_an_ear_gone_muffled_overnight_is_same_day(rs):
    level, a = _level(rs, "I woke up this morning and my right ear has gone muffled and dull, no cold", ADULT)
    assert level == 3, a.reasons


# ---------------------------------------------------------------- b. look-alikes at their level
def test_b_a_nosebleed_that_stopped_with_pinching_is_self_care(rs):
    level, a = _level(
        rs,
        "my daughter had a big nosebleed, lots of blood, but we pinched it for ten minutes and it's stopped now",
        SCHOOL,
    )
    assert level == 5, a.reasons


def test_b_guard_a_nosebleed_that_will_not_stop_is_an_emergency(rs):
    level, a = _level(
        rs, "his nose has been pouring blood for half an hour and it won't stop even pinching", OTHER
    )
    assert level is not None and level <= 2, a.reasons


def test_b_a_simple_faint_told_as_slid_down_the_wall_is_self_care(rs):
    level, a = _level(
        rs,
        "she'd been stood for ages in a hot hall and slid down the wall, went a bit grey, back with us in a few "
        "seconds and she's chatting away now",
        TEEN,
    )
    assert level == 5, a.reasons


def test_b_guard_grey_mottled_skin_with_a_fever_is_still_999(rs):
    level, a = _level(rs, "he has a high fever and his skin has gone grey and blotchy", OTHER)
    assert level == 1, a.reasons


def test_b_a_twisted_ankle_you_can_walk_on_with_the_bone_not_tender_is_self_care(rs):
    level, a = _level(
        rs,
        "I rolled my ankle on a step, I can walk on it and the bone doesn't hurt when I press it, should I get an x-ray",
        ADULT,
    )
    assert level == 5, a.reasons


def test_b_guard_a_swollen_wrist_asking_about_an_x_ray_stays_same_day(rs):
    level, a = _level(
        rs,
        "she fell on her wrist, it's all swollen and she won't let me touch it, does she need an x-ray",
        SCHOOL,
    )
    assert level == 3, a.reasons


def test_b_a_heart_attack_question_with_a_benign_alternative_is_not_999(rs):
    level, a = _level(
        rs,
        "my heart skips a beat now and then, no chest pain, is that a heart attack thing or just palpitations",
        ADULT,
    )
    assert level == 4, a.reasons


def test_b_guard_a_heart_attack_question_with_chest_pain_is_999(rs):
    level, a = _level(rs, "I've got crushing chest pain, is this a heart attack or just indigestion", ADULT)
    assert level == 1, a.reasons
