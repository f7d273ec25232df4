"""Families blind round 22 exposed (rule set 2026.12.11), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are F201-F248 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules import PatientContext, assess
from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
TEEN = {"subject": "child", "age_band": "12_to_17"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}
CHILD = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. recognizer spellings
@pytest.mark.parametrize(
    ("text", "worst"),
    [
        ("my dad missed his dial a sis yesterday and now his legs are weak and his heart is skipping", 2),
        ("shes on dialisis three times a week and she missed friday and now shes really breathless", 2),
    ],
)
def test_a_misheard_dialysis_reaches_the_rules(rs, text, worst):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= worst, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my son has asthma and he's using his blue in hailer every four hours but he's playing normally",
        "she needs her blue inhaler a bit more with this cold but she's chatting away fine",
    ],
)
def test_a_the_blue_inhaler_is_not_a_blue_child(rs, text):
    level, a = _level(rs, text, CHILD)
    assert "RF-BREATH-001" not in a.rule_ids and level is not None and level >= 3, a.reasons


def test_a_guard_blue_lips_are_still_an_emergency(rs):
    level, a = _level(rs, "he's got asthma and his lips have gone blue and he can't get his words out", CHILD)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- b. a child's age in months said bare
@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("my little boy's 18 months and he's got a rash", 18.0),
        ("my daughter's 10 months, she's off her food", 10.0),
        ("my daughter's 5 days off school with a cough", None),
        ("my son's 6 weeks of coughing now", None),
    ],
)
def test_b_a_childs_age_in_months_is_read_only_before_a_clause(text, months):
    a = assess([text], context=PatientContext(subject="child"))
    assert a.facts["age_months"] == months


def test_b_a_toddler_back_to_normal_after_a_bump_is_self_care(rs):
    text = "my little girl's 20 months, she bumped her head on the table, cried straight away and she's back playing now"
    level, a = _level(rs, text, TODDLER)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my little girl's 20 months, she bumped her head on the table and she's been sick twice since",
        "my baby's 9 months, he bumped his head on the table, cried straight away and he's back playing now",
    ],
)
def test_b_guard_a_bump_with_vomiting_or_under_one_year_is_not_self_care(rs, text):
    level, a = _level(rs, text, TODDLER)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- c. a small scratch that bled a little
@pytest.mark.parametrize(
    "text",
    [
        "my friend's dog scratched my arm, just a small scratch, a little bit of blood, I've washed it",
        "I nicked my finger on a tin, small cut, tiny bit of bleeding, it's stopped now",
    ],
)
def test_c_a_small_scratch_that_bled_a_little_is_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    ("text", "worst"),
    [
        ("I've got a deep cut on my leg from the glass and it's bleeding a lot, it won't stop", 3),
        ("the dog bit my hand, deep puncture wounds, and now it's red and swollen", 3),
    ],
)
def test_c_guard_deep_wounds_heavy_bleeding_and_bites_keep_their_level(rs, text, worst):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= worst, a.reasons


# ---------------------------------------------------------------- d. pins and needles from sitting on a limb
@pytest.mark.parametrize(
    "text",
    [
        "my leg went to sleep after kneeling in the garden, pins and needles for a minute, it went off after a few minutes",
        "I had tingling in my foot after sitting on it watching a film, it's fine now",
    ],
)
def test_d_brief_positional_pins_and_needles_gone_now_is_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "pins and needles in my arm after sitting on it, but my face dropped on one side and my speech went funny",
        "I had tingling in my foot after sitting on it and now I can't lift my arm",
        # "went dead" is how a weak limb is often described: never read as a limb slept on
        "my leg went dead after sitting in the car and it's still weak, it went off a bit after a few minutes",
    ],
)
def test_d_guard_stroke_signs_beside_pins_and_needles_stay_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


def test_d_put_the_wind_up_me_is_fright_not_wind(rs):
    level, a = _level(
        rs,
        "the news put the wind up me, I had pins and needles in my foot after sitting cross-legged but it went off after a few minutes",
        ADULT,
    )
    assert not any(r.startswith("URG-ABDO") for r in a.rule_ids) and level == 5, a.reasons


# ---------------------------------------------------------------- e. posterior circulation, torsion said late
@pytest.mark.parametrize(
    "text",
    [
        "my husband is 70, he's suddenly very giddy and keeps vomiting and he's not able to walk straight",
        "mum's 79 and since lunchtime she's dizzy and sick and she keeps walking to one side",
    ],
)
def test_e_sudden_imbalance_with_giddiness_in_an_older_adult_is_an_emergency(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my son's 13, he has a terrible pain down there, down below in his, in his testicle, and he's been sick",
        "he's 15 and woke with a bad pain that's low down, in the, in his left ball, and it's swollen",
    ],
)
def test_e_testicular_pain_named_late_in_a_boy_is_an_emergency(rs, text):
    level, a = _level(rs, text, TEEN)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. injuries and aches said plainly
def test_f_an_injury_that_may_need_an_x_ray_is_seen_within_hours(rs):
    level, a = _level(
        rs, "fell off my bike onto my wrist, it's swollen and sore, I think I need an x-ray", ADULT
    )
    assert level == 3, a.reasons


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I've done my back in doing the hoovering, it's sore but I can walk, no numbness", 5),
        ("I'm doing my back in every time I lift the kids, it's been aching for a couple of weeks", 4),
        ("I've got a stiff swollen knee since the weekend, it's not getting better", 4),
    ],
)
def test_f_back_and_joint_complaints_said_plainly_get_a_level(rs, text, expected):
    level, a = _level(rs, text, ADULT)
    assert level is not None and abs(level - expected) <= 1 and level >= 4, a.reasons


# ---------------------------------------------------------------- g. a meter reading above its range
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's type 1, she's been vomiting all morning and her meter just says HI",
        "I'm diabetic and my libre is showing high and I've got tummy pain and I keep being sick",
    ],
)
def test_g_a_meter_that_reads_hi_with_vomiting_is_an_emergency(rs, text):
    level, a = _level(rs, text, TEEN)
    assert level is not None and level <= 2, a.reasons
