"""Families blind round 40 exposed (scored once at rule set 2026.12.31, fixed in 2026.12.32), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AQ001-AQ048 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules.engine import analyse
from tests.clinical_rules.levels import level_of as _level
from tests.clinical_rules.levels import rule_ids as _rules

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TEEN = {"subject": "other", "age_band": "12_to_17"}


# ---------------------------------------------------------------- a. a non-blanching rash told at length
@pytest.mark.parametrize(
    "text",
    [
        "he's got a fever and little purply spots on his chest, I did the glass thing on his arm and they "
        "don't fade at all",
        "she's burning up and there's a rash on her legs, I pushed a tumbler on it and honestly it doesn't go away",
        "my son's hot and there are some purplish dots on his tummy",
    ],
)
def test_a_a_feverish_child_with_spots_that_do_not_fade_is_a_999_call(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level == 1, a.reasons


def test_a_guard_spots_that_fade_under_the_glass_are_not_this(rs):
    level, a = _level(
        rs, "he's got a cold and a red spotty rash, I pressed a glass on it and they do go away", SCHOOL
    )
    assert "RF-SEPSIS-001" not in _rules(a) and level != 1, a.reasons


# ---------------------------------------------------------------- b. a goodbye message with the means
@pytest.mark.parametrize(
    "text",
    [
        "my friend whatsapped me saying sorry for everything and goodbye and now she won't answer",
        "he sent a snap of an empty box of sleeping tablets and said love you all, he's not picking up",
    ],
)
def test_b_a_goodbye_message_or_an_empty_packet_of_pills_is_a_999_call(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- c. lay words for tummy pain and a painful eye
def test_c_bellyache_moving_to_the_right_is_same_day(rs):
    level, a = _level(
        rs,
        "she's had bellyache round her belly button since lunch and now it's gone down to the right",
        SCHOOL,
    )
    assert level is not None and level <= 3, a.reasons


def test_c_a_contact_lens_wearers_eye_getting_more_painful_is_same_day(rs):
    level, a = _level(
        rs, "I wear contacts and my left eye has been getting really painful today, the light hurts it", ADULT
    )
    assert level is not None and level <= 3, a.reasons


def test_c_a_mole_that_does_not_hurt_is_not_tummy_pain(rs):
    a = analyse(rs, "the mole is darker on one side it doesn't hurt or bleed")
    assert "abdominal_pain" not in {m.concept for m in a.mentions if m.assertion == "present"}


# ---------------------------------------------------------------- d. look-alikes at their level
def test_d_gunk_from_an_ear_that_has_stopped_hurting_is_a_gp_matter(rs):
    level, a = _level(
        rs,
        "there's some yellow stuff coming out of her ear this morning, the earache's gone, she's fine",
        SCHOOL,
    )
    assert level == 4, a.reasons


def test_d_a_sore_arm_after_a_new_gym_class_is_self_care(rs):
    level, a = _level(
        rs,
        "I'm 25, started a new crossfit class and my arms are sore when I lift them, otherwise I feel fine",
        ADULT,
    )
    assert level == 5, a.reasons


def test_d_guard_an_aching_left_arm_with_sweating_is_still_999(rs):
    level, a = _level(rs, "my left arm is aching and I'm sweaty and sick, I'm 35", ADULT)
    assert level == 1, a.reasons


def test_d_someone_elses_panic_is_not_the_patients_anxiety(rs):
    a = analyse(rs, "my wife is panicking because of my headache")
    assert "anxiety" not in {m.concept for m in a.mentions if m.assertion == "present"}
