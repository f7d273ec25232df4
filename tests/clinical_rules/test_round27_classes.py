"""Families blind round 27 exposed (scored once at rule set 2026.12.18, fixed in 2026.12.19), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AC701-AC748 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. a small child chewing someone's tablets
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's been sucking on some of her grandad's blood pressure pills, I don't know how many",
        "he was munching my iron tablets out of the cupboard, he's three",
    ],
)
def test_a_a_young_child_chewing_tablets_goes_to_hospital(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level is not None and level <= 2, a.reasons


def test_a_sleepy_or_pale_after_chewing_tablets_is_a_999_call(rs):
    level, a = _level(
        rs, "she's chewed some of her nan's tablets and now she's really sleepy and floppy", TODDLER
    )
    assert level == 1, a.reasons


def test_a_guard_an_adult_asking_about_chewing_their_own_tablets_is_not_an_ingestion(rs):
    level, a = _level(rs, "is it ok if I'm chewing my tablets because I can't swallow them whole", ADULT)
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- b. carbon monoxide: a noisy boiler, a household unwell
@pytest.mark.parametrize(
    "text",
    [
        "the whole family has had headaches and felt sick for days and the boiler keeps making a banging noise",
        "me and the kids feel dizzy and sick and the gas fire has been making a strange smell",
    ],
)
def test_b_a_household_unwell_with_a_faulty_appliance_is_carbon_monoxide(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. the contact-lens wearer's sore red eye
@pytest.mark.parametrize(
    "text",
    [
        "my eye is red and really sore since last night, I wear monthly contact lenses",
        "my right eye's gone red and painful and sensitive to the light",
    ],
)
def test_c_a_sore_red_eye_with_lenses_or_light_sensitivity_is_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


def test_c_guard_itchy_hay_fever_eyes_stay_self_care(rs):
    level, a = _level(rs, "my eyes are itchy and watery with hay fever, I wear glasses not contacts", ADULT)
    assert level == 5, a.reasons


# ---------------------------------------------------------------- d. breathing through a blocked nose
@pytest.mark.parametrize(
    "text",
    [
        "I've got a stinking cold and I can't breathe through my nose at all",
        "my sinuses are so blocked I'm struggling to breathe through them at night",
    ],
)
def test_d_a_blocked_nose_is_not_breathing_difficulty(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 4, a.reasons


def test_d_guard_cant_breathe_with_blue_lips_still_escalates(rs):
    level, a = _level(rs, "my nose is blocked and now I can't breathe and my lips are going blue", ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. "stroke" and "heart attack" as figures of speech
@pytest.mark.parametrize(
    "text",
    [
        "my teenager nearly gave me a heart attack coming in at 3am, anyway I've got a mild headache, can I take ibuprofen",
        "the bill almost gave me a stroke, but I'm ringing about a sore throat I've had for two days",
    ],
)
def test_e_a_figure_of_speech_is_not_a_stroke_or_heart_attack(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 4, a.reasons


@pytest.mark.parametrize(
    "text",
    ["I think my husband is having a stroke, his face has dropped", "I think I'm having a heart attack"],
)
def test_e_guard_a_stroke_or_heart_attack_said_for_real_still_escalates(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- f. a headache the caller puts down to stress
def test_f_a_headache_put_down_to_stress_is_self_care(rs):
    level, a = _level(
        rs, "my heads been banging all afternoon, it must be stress, what painkillers can I take", ADULT
    )
    assert level == 5, a.reasons


def test_f_guard_a_sudden_worst_headache_is_not_explained_by_stress(rs):
    level, a = _level(
        rs, "I think it's just stress but this headache came on suddenly and it's the worst ever", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- g. screening and follow-up asked about
@pytest.mark.parametrize(
    "text",
    [
        "my dad had bowel cancer young, should I be getting screened for it myself",
        "the hospital said to see the GP for a follow up after my scan, I just need to arrange it",
    ],
)
def test_g_a_screening_or_follow_up_question_gets_a_gp_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


# ---------------------------------------------------------------- h. the night out said instead of "hangover"
def test_h_a_headache_and_one_vomit_after_a_night_out_is_self_care(rs):
    level, a = _level(
        rs,
        "had a big night out for a work do, my head is pounding and I was sick once but water's staying down",
        ADULT,
    )
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "went out drinking last night, my head is banging and I banged it on the door on the way home",
        "big night out yesterday and I've been sick all morning, I can't keep anything down and there's blood in it",
    ],
)
def test_h_guard_a_head_injury_or_vomiting_blood_after_drinking_is_not_a_hangover(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 3, a.reasons
