"""Families blind round 28 exposed (scored once at rule set 2026.12.19, fixed in 2026.12.20), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AD801-AD848 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
SELF_ELDER = {"age_band": "65_plus"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
BABY = {"subject": "child", "age_band": "under_3_months"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. after the birth, in other words
@pytest.mark.parametrize(
    "text",
    [
        "she had the bairn a fortnight back and now she's got a splitting headache and her face is all swollen",
        "my partner had our child ten days past, her head is pounding and she's seeing flashing lights",
    ],
)
def test_a_a_headache_with_swelling_or_lights_after_a_birth_is_an_emergency(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. back pain with weak legs
def test_b_back_getting_worse_with_weak_legs_in_known_cancer_is_an_emergency(rs):
    level, a = _level(
        rs,
        "I have breast cancer and my back has got worse and worse this week, now my legs feel weak",
        SELF_ELDER,
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. missed dialysis, in lay words
@pytest.mark.parametrize(
    "text",
    [
        "he missed his dial assis yesterday and now he's feeling really weak",
        "I skipped my dialysis session on Monday and my heart keeps doing funny beats",
    ],
)
def test_c_missed_dialysis_with_weakness_or_an_odd_heartbeat_is_an_emergency(rs, text):
    level, a = _level(rs, text, SELF_ELDER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. bouts of screaming with legs drawn up
@pytest.mark.parametrize(
    "text",
    [
        "my baby keeps screaming and drawing his knees up every quarter of an hour, then goes floppy and pale",
        "there's something like redcurrant jelly in her nappy and she's been crying on and off all afternoon",
    ],
)
def test_d_possible_intussusception_goes_to_hospital(rs, text):
    level, a = _level(rs, text, TODDLER)
    assert level is not None and level <= 2, a.reasons


def test_d_guard_a_teething_baby_who_is_grizzly_is_not_intussusception(rs):
    level, a = _level(
        rs, "she's teething and a bit grizzly, dribbling loads and chewing everything, feeding fine", TODDLER
    )
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- e. psychosis after a birth
@pytest.mark.parametrize(
    "text",
    [
        "my wife gave birth a week ago and now she's convinced the baby isn't hers and she's hearing voices",
        "since she had the baby she's barely slept for four nights and she's talking really fast about strange things",
    ],
)
def test_e_possible_postpartum_psychosis_is_seen_now(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level is not None and level <= 2, a.reasons


def test_e_guard_tearful_days_after_the_birth_are_not_psychosis(rs):
    level, a = _level(
        rs,
        "I had my baby five days ago and I keep crying for no reason, my mum says it's the baby blues",
        ADULT,
    )
    assert level is not None and level >= 3, a.reasons


# ---------------------------------------------------------------- f. heart failure with fluid building up
def test_f_heart_failure_with_weight_up_quickly_is_same_day(rs):
    level, a = _level(
        rs, "I have heart failure and I've put on three pounds in two days, my ankles are puffier", SELF_ELDER
    )
    assert level == 3, a.reasons


def test_f_guard_heart_failure_breathless_at_rest_is_an_emergency(rs):
    level, a = _level(
        rs,
        "I've got heart failure and tonight I'm so breathless I can't lie flat or finish a sentence",
        SELF_ELDER,
    )
    assert level is not None and level <= 2, a.reasons


def test_f_heart_failure_named_is_not_chest_pressure(rs):
    level, a = _level(
        rs,
        "my heart failure nurse said to ring if my weight went up, it's up a kilo, I feel fine",
        SELF_ELDER,
    )
    assert "chest_pressure" not in {c for f in a.reasons for c in f.concepts}, a.reasons
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- g. milia on a well baby
def test_g_tiny_white_spots_on_a_well_babys_nose_are_self_care(rs):
    level, a = _level(
        rs,
        "my two-week-old has little white spots over her nose and chin, she's feeding well and happy",
        BABY,
    )
    assert level == 5, a.reasons


def test_g_guard_spots_on_a_baby_with_a_fever_are_not_self_care(rs):
    level, a = _level(rs, "my six-week-old has tiny white spots on his face and a temperature of 38.2", BABY)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- h. a spot of blood from cracked lips
def test_h_blood_from_chapped_lips_is_self_care(rs):
    level, a = _level(rs, "my lips are so chapped they bled a bit this morning, what's good for them", ADULT)
    assert level == 5, a.reasons


def test_h_guard_cracked_lips_bleeding_on_warfarin_is_not_self_care(rs):
    level, a = _level(rs, "my lips are cracked and bleeding and I'm on warfarin", SELF_ELDER)
    assert level is not None and level <= 4, a.reasons


# ---------------------------------------------------------------- i/j. words said of habit or of things
@pytest.mark.parametrize(
    "text",
    [
        "my mum always says she's having a heart attack whenever she sees the news, but really I'm ringing about her cough",
        "our tent collapsed in the wind and I scraped my hand a little on the pole",
        "my car engine seized on the motorway and I've got a bit of a headache from all the stress",
    ],
)
def test_ij_a_habit_of_speech_or_a_thing_that_collapsed_is_not_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is None or level >= 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my husband has just collapsed in the kitchen and isn't answering me",
        "she's having a seizure right now",
    ],
)
def test_ij_guard_a_person_who_collapsed_or_is_fitting_still_escalates(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- k. the question echoed, then denied
@pytest.mark.parametrize(
    "text",
    [
        "Breathing problems? No, none, it's just a runny nose and a sneeze",
        "Any chest pain? No. Just a sore throat since yesterday",
    ],
)
def test_k_a_question_echoed_then_denied_is_a_denial(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 4, a.reasons


def test_k_guard_a_question_echoed_then_confirmed_escalates(rs):
    level, a = _level(rs, "Chest pain? Yes, a crushing chest pain going down my arm", ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- l. "can't breathe" then the nose
def test_l_cant_breathe_then_a_bunged_up_nose_is_a_blocked_nose(rs):
    level, a = _level(
        rs, "I can't breathe, my nose is completely stuffed up with this cold, chest is fine", ADULT
    )
    assert level is not None and level >= 4, a.reasons


# ---------------------------------------------------------------- m. routine questions with long-term conditions
@pytest.mark.parametrize(
    "text",
    [
        "I've got COPD and I'm overdue my annual review, how do I book it",
        "I need a form signed for my blue badge, I have MS",
        "I've been on sertraline a year and feel well, I'd like to talk about coming off my medication",
        "I'm on lithium, do I need another blood test, the last one was months ago",
    ],
)
def test_m_routine_questions_get_a_gp_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


# ---------------------------------------------------------------- n. chest pain already checked and cleared
def test_n_chest_pain_checked_and_cleared_is_followed_up_by_the_gp(rs):
    level, a = _level(
        rs,
        "I had chest pain on Monday, the hospital did an ECG and bloods and said it was muscular, now I need a sick note",
        ADULT,
    )
    assert level == 4, a.reasons


def test_n_guard_chest_pain_back_and_worse_after_a_clear_test_escalates(rs):
    level, a = _level(
        rs,
        "they did an ECG last week and said it was fine but the chest pain is back, worse, and I'm sweating",
        ADULT,
    )
    assert level == 1, a.reasons


# ---------------------------------------------------------------- o. heartburn said as "my heart's burning"
def test_o_heart_burning_after_a_meal_is_heartburn(rs):
    level, a = _level(
        rs, "my heart's burning after a big fry-up, acid coming up my throat, I feel fine otherwise", ADULT
    )
    assert level is not None and level >= 4, a.reasons


# ---------------------------------------------------------------- p. the silent heart attack in diabetes
def test_p_a_diabetic_sweaty_sick_and_about_to_pass_out_is_a_heart_attack_call(rs):
    level, a = _level(
        rs,
        "I'm diabetic, I've gone cold and clammy, I feel sick and like I'm going to faint, no pain",
        SELF_ELDER,
    )
    assert level == 1, a.reasons


def test_p_guard_sweaty_and_shaky_before_lunch_in_diabetes_is_not_read_as_cardiac(rs):
    level, a = _level(
        rs,
        "I'm diabetic and I'm a bit sweaty and shaky, it's nearly lunchtime and I feel fine otherwise",
        ADULT,
    )
    assert "RF-CARDIAC-014" not in {f.rule_id for f in a.reasons}, a.reasons
