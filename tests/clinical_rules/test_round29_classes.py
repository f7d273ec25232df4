"""Families blind round 29 exposed (scored once at rule set 2026.12.20, fixed in 2026.12.21), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AE901-AE948 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
INFANT = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. shock from bleeding below, in other Englishes
@pytest.mark.parametrize(
    "text",
    [
        "mi grandad a bleed from him back passage all morning, him look grey an dizzy an him cyaan stand",
        "my mum's bleeding from her bottom, loads of blood, she's pale and she can't even stand up now",
    ],
)
def test_a_bleeding_below_with_pallor_and_unable_to_stand_is_a_999_call(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level == 1, a.reasons


def test_a_guard_a_streak_of_blood_on_the_paper_with_piles_is_not_an_emergency(rs):
    level, a = _level(
        rs, "a little streak of blood on the toilet paper, I've got piles, I feel completely fine", ADULT
    )
    assert level is not None and level >= 3, a.reasons


# ---------------------------------------------------------------- b. bleeding that soaks through the dressing
@pytest.mark.parametrize(
    "text",
    [
        "I cut my hand on a broken glass, I've pressed on it ten minutes and it keeps soaking through the tea towel",
        "he sliced his thumb and it's still coming through the bandage after I held it for ages",
    ],
)
def test_b_a_wound_still_bleeding_through_the_dressing_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. the glass test that fades
def test_c_a_rash_that_fades_under_the_glass_is_not_read_as_meningitis(rs):
    level, a = _level(
        rs, "he's got a temperature and a red rash on his tummy, I did the glass test and it fades", SCHOOL
    )
    assert "RF-MENING-001" not in {f.rule_id for f in a.reasons}, a.reasons
    assert level is not None and level >= 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "she's got a fever and I did the glass test and the spots don't fade",
        "he's hot and there are little purple spots on his legs",
    ],
)
def test_c_guard_a_rash_that_does_not_fade_with_fever_escalates(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. a hedged denial
def test_d_i_wouldnt_say_its_an_attack_is_a_denial_of_the_attack(rs):
    level, a = _level(
        rs,
        "I wouldn't say it's an asthma attack, I can talk fine, but I'm using my blue inhaler every four hours",
        ADULT,
    )
    assert level == 3, a.reasons


def test_d_guard_an_attack_said_plainly_escalates(rs):
    level, a = _level(rs, "I'm having an asthma attack and my inhaler isn't helping", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. a back strain with every red flag denied
def test_e_a_back_strain_after_the_garden_with_no_red_flags_is_self_care(rs):
    level, a = _level(
        rs,
        "my lower back has been aching since I was in the garden at the weekend, no numbness, peeing fine, walking ok",
        ADULT,
    )
    assert level == 5, a.reasons


# ---------------------------------------------------------------- f/g. cystitis words and routine questions get a level
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("it stings when I go and I'm desperate for a wee every few minutes, no fever", 4),
        ("I feel fine, I was wondering if I need my asthma review, it has been over a year", 4),
        ("my partner's test came back positive for gonorrhoea, how do I get tested", 4),
    ],
)
def test_fg_urinary_words_and_routine_questions_get_a_level(rs, text, expected):
    level, a = _level(rs, text, ADULT)
    assert level == expected, a.reasons


def test_g_guard_a_request_said_with_a_denial_is_taken_back(rs):
    level, a = _level(
        rs, "I don't need a repeat prescription, I've got plenty, but I've had a rash for a day", ADULT
    )
    assert "URG-ROUTINE-001" not in {f.rule_id for f in a.reasons}, a.reasons


# ---------------------------------------------------------------- h. Scots "jags"
def test_h_a_baby_a_bit_warm_after_her_jags_is_self_care(rs):
    level, a = _level(
        rs, "the wean had her jags this morning, she's a bit warm and girny but feeding fine", INFANT
    )
    assert level == 5, a.reasons
