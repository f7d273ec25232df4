"""Families blind round 32 exposed (scored once at rule set 2026.12.23, fixed in 2026.12.24), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AH201-AH248 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
TEEN = {"subject": "child", "age_band": "12_to_17"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. an overdose told in the present tense
@pytest.mark.parametrize(
    "text",
    [
        "I take maybe twenty of my sleeping tablets two hours ago, now I feel very heavy",
        "my husband take about forty paracetamol this morning, he say he is fine",
    ],
)
def test_a_an_overdose_in_the_present_tense_with_a_time_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons


def test_a_guard_a_daily_tablet_count_is_not_an_overdose(rs):
    level, a = _level(
        rs, "I take twenty tablets a day for my heart and diabetes, can I have a pill organiser", ADULT
    )
    assert "RF-TOX-001" not in {f.rule_id for f in a.reasons}, a.reasons


# ---------------------------------------------------------------- b. ketones and the contact-lens eye
def test_b_ketones_as_a_recognizer_spells_them_with_deep_breathing_is_an_emergency(rs):
    level, a = _level(
        rs, "shes type one her key tones are high and shes breathing deep and fast and being sick", TEEN
    )
    assert level is not None and level <= 2, a.reasons


def test_b_a_lens_wearers_eye_getting_redder_and_more_painful_is_same_day(rs):
    level, a = _level(
        rs,
        "I wear contact lenses and my right eye is getting redder and more painful since this morning",
        ADULT,
    )
    assert level == 3, a.reasons


# ---------------------------------------------------------------- c. the heart doing odd things now and then
def test_c_a_flip_every_few_days_for_months_sees_the_gp(rs):
    level, a = _level(
        rs, "every few weeks my heart does a little flip, then it's normal, no pain or dizziness", ADULT
    )
    assert level == 4, a.reasons


# ---------------------------------------------------------------- d. usual period pain
def test_d_severe_period_pain_the_same_every_month_sees_the_gp(rs):
    level, a = _level(
        rs, "my period pains are awful, same as always, every month the painkillers barely help", ADULT
    )
    assert level == 4, a.reasons


def test_d_guard_a_new_severe_pain_with_a_missed_period_is_not_usual(rs):
    level, a = _level(
        rs, "my period is late and I've got a sudden severe pain on one side and I feel faint", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. minor eye and hair complaints
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("there's a bright red patch on the white of my eye, it doesn't hurt and my sight is fine", 5),
        ("I've got a stye on my lower lid, it's a bit sore, my eye is fine", 5),
        ("my hair is falling out in a round patch at the back, I feel well", 4),
    ],
)
def test_e_minor_eye_and_hair_complaints_get_their_level(rs, text, expected):
    level, a = _level(rs, text, ADULT)
    assert level == expected, a.reasons


def test_e_guard_blood_on_the_eye_after_a_blow_is_not_self_care(rs):
    level, a = _level(
        rs, "I got hit in the eye with a ball and now the white is all red and my vision is blurry", ADULT
    )
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- f. soap and bleeding that has stopped
def test_f_a_mouthful_of_washing_up_liquid_in_a_well_toddler_is_self_care(rs):
    level, a = _level(
        rs, "he drank a bit of washing-up liquid from the bottle, coughed once and he's fine now", TODDLER
    )
    assert level == 5, a.reasons


def test_f_guard_a_dishwasher_tablet_is_still_a_poison(rs):
    level, a = _level(rs, "she bit into a dishwasher tablet, her mouth looks red", TODDLER)
    assert level is not None and level <= 2, a.reasons


def test_f_heavy_bleeding_that_has_stopped_is_not_a_999_call(rs):
    level, a = _level(
        rs,
        "the cut was pouring with blood everywhere but it's stopped bleeding now with a dressing on",
        ADULT,
    )
    assert level is not None and level >= 2, a.reasons


def test_f_guard_heavy_bleeding_that_will_not_stop_escalates(rs):
    level, a = _level(rs, "there's blood everywhere and it won't stop bleeding even with pressure", ADULT)
    assert level == 1, a.reasons
