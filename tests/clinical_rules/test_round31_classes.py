"""Families blind round 31 exposed (scored once at rule set 2026.12.22, fixed in 2026.12.23), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AG101-AG148 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
TEEN = {"subject": "child", "age_band": "12_to_17"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. a fall from height at work
def test_a_a_fall_from_a_roof_with_confusion_is_a_999_call(rs):
    level, a = _level(
        rs,
        "my colleague fell off the roof, he's talking but he's confused and there's blood from his ear",
        OTHER,
    )
    assert level == 1, a.reasons


def test_a_guard_a_short_step_off_a_ladder_with_sore_ribs_is_not_major_trauma(rs):
    level, a = _level(
        rs, "I slipped off the bottom step of a ladder, about a foot, my ribs are a bit sore", ADULT
    )
    assert level is not None and level >= 3, a.reasons


# ---------------------------------------------------------------- b. a clot after a flight, breathless on the stairs
def test_b_a_swollen_calf_with_any_breathlessness_is_an_emergency(rs):
    level, a = _level(
        rs,
        "since the long flight my calf's swollen and sore and I get a bit out of breath on the stairs",
        ADULT,
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. vomiting green
@pytest.mark.parametrize(
    "text",
    [
        "he's been bringing up green stuff and hasn't had a poo for three days, his tummy is sore",
        "she keeps being sick green bile and her stomach hurts",
    ],
)
def test_c_green_vomit_with_tummy_pain_or_no_bowels_is_an_emergency(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. fever after a malaria country
def test_d_fever_after_travel_to_a_malaria_country_is_an_emergency(rs):
    level, a = _level(
        rs,
        "I got back from Ghana ten days ago and now I've got a fever and the shivers, probably just flu",
        ADULT,
    )
    assert level is not None and level <= 2, a.reasons


def test_d_guard_fever_after_a_european_holiday_is_not_malaria(rs):
    level, a = _level(
        rs, "I got back from Spain last week and I've got a temperature and a sore throat", ADULT
    )
    assert "URG-FEVER-050" not in {f.rule_id for f in a.reasons}, a.reasons


# ---------------------------------------------------------------- e. HIV exposure and self-harm
@pytest.mark.parametrize(
    "text",
    [
        "we had sex without a condom last night and I'm scared about HIV, can I get PEP",
        "I'm a nurse and I've just had a needle stick injury from a used needle",
    ],
)
def test_e_a_possible_hiv_exposure_is_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 3, a.reasons


def test_e_self_harm_without_suicidal_intent_is_same_day(rs):
    level, a = _level(
        rs, "my daughter's been cutting her legs, the cuts are small and she says she's not suicidal", TEEN
    )
    assert level == 3, a.reasons


def test_e_guard_eczema_scratched_raw_is_not_self_harm(rs):
    level, a = _level(rs, "his eczema is so itchy he's been scratching his arms till they bleed", SCHOOL)
    assert "URG-MH-050" not in {f.rule_id for f in a.reasons}, a.reasons


# ---------------------------------------------------------------- f. ear discharge with a fever; hearing slowly going
def test_f_ear_discharge_with_a_fever_is_same_day(rs):
    level, a = _level(rs, "his ear is leaking yellow gunk and he's burning up with a temperature", SCHOOL)
    assert level == 3, a.reasons


def test_f_hearing_slowly_going_sees_the_gp(rs):
    level, a = _level(
        rs, "my hearing's been getting worse over the last year, the kids say the telly is too loud", ADULT
    )
    assert level == 4, a.reasons


# ---------------------------------------------------------------- g. an occasional skipped beat
def test_g_an_occasional_skipped_beat_after_coffee_sees_the_gp(rs):
    level, a = _level(
        rs, "my heart skips a beat now and then, mostly after coffee, no dizziness or chest pain", ADULT
    )
    assert level == 4, a.reasons


def test_g_guard_skipped_beats_with_dizziness_stay_urgent(rs):
    level, a = _level(rs, "my heart keeps skipping beats now and then and I feel dizzy with it", ADULT)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- h. routine and self-care asks
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("how do I get referred for a hearing aid", 4),
        ("I'd like to get my cholesterol checked, my dad had high cholesterol", 4),
        ("what should I take with me on holiday in case I get traveller's diarrhoea", 5),
        ("my son swallowed his chewing gum, he's absolutely fine", 5),
        (
            "my daughter's six, she bumped her head on the climbing frame, she's got a little lump and is fine",
            5,
        ),
    ],
)
def test_h_routine_and_self_care_asks_get_their_level(rs, text, expected):
    ctx = SCHOOL if ("son" in text or "daughter" in text) else ADULT
    level, a = _level(rs, text, ctx)
    assert level == expected, a.reasons
