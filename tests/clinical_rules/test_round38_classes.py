"""Families blind rounds 37 and 38 exposed (both scored once at rule set 2026.12.28, fixed in
2026.12.30), each tested on sibling wordings written from the guidance, none of them the rounds' own
sentences (those are AM701-AM748 and AN801-AN848 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules.facts import durations
from tests.clinical_rules.levels import level_of as _level
from tests.clinical_rules.levels import rule_ids as _rules

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}
NEWBORN = {"subject": "child", "age_band": "under_3_months"}


# ---------------------------------------------------------------- a. a hypo told in dialect
@pytest.mark.parametrize(
    "text",
    [
        "she's diabetic on insulin and she's talking pure rubbish and she's hardly waking up",
        "my husband's type one, he's all sweaty and no making any sense, I can barely wake him",
    ],
)
def test_a_a_diabetic_who_is_confused_and_barely_rousable_is_a_999_call(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- b. a child who took someone's tablets
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's two and I think she's taken one of her grandad's heart tablets",
        "I found him with the dosette box open, he's had a couple of my diabetes tablets",
        "my toddler ate one of the little round batteries from the remote",
    ],
)
def test_b_a_small_child_who_took_adult_tablets_or_a_battery_is_seen_now(rs, text):
    level, a = _level(rs, text, TODDLER)
    assert level is not None and level <= 2, a.reasons


def test_b_guard_an_adult_taking_their_own_tablets_is_not_this(rs):
    level, a = _level(rs, "I've taken one of my blood pressure tablets this morning as usual", ADULT)
    assert "RF-TOX-040" not in _rules(a), a.reasons


# ---------------------------------------------------------------- c. alcohol withdrawal
def test_c_withdrawal_with_seeing_things_is_an_emergency(rs):
    level, a = _level(
        rs,
        "he stopped drinking three days ago after years of a bottle a day and now he's seeing insects on the "
        "ceiling and shaking like a leaf",
        OTHER,
    )
    assert level is not None and level <= 2, a.reasons


def test_c_stopping_heavy_drinking_suddenly_is_same_day(rs):
    level, a = _level(
        rs, "I've decided to go cold turkey off the drink, I was on a litre of vodka a day", ADULT
    )
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- d. despair with no plan, Northern English
def test_d_better_off_without_us_with_no_plan_is_same_day_crisis_care(rs):
    level, a = _level(
        rs,
        "I keep thinking me family would be better off without us, but I've nae plan and I'm not gonna do owt",
        ADULT,
    )
    assert level == 3, a.reasons


def test_d_guard_better_off_without_us_and_no_safety_answer_is_999(rs):
    level, a = _level(rs, "honestly everyone would be better off without us", ADULT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. dental swelling told far from the tooth
def test_e_toothache_with_a_swollen_cheek_is_same_day(rs):
    level, a = _level(
        rs,
        "I have trouble with my back tooth for four days now and since this morning my jaw is swollen up, "
        "I can swallow fine",
        ADULT,
    )
    assert level == 3, a.reasons


def test_e_guard_a_swollen_cheek_without_a_tooth_is_not_this(rs):
    level, a = _level(rs, "my cheek is swollen after a wasp sting and my lips are tingling", ADULT)
    assert "URG-DENTAL-022" not in _rules(a), a.reasons


# ---------------------------------------------------------------- f. sudden hearing loss
def test_f_hearing_lost_overnight_in_one_ear_is_same_day(rs):
    level, a = _level(rs, "all of a sudden I've gone deaf in my right ear, it just feels blocked", ADULT)
    assert level == 3, a.reasons


def test_f_guard_hearing_slowly_getting_worse_is_a_gp_matter(rs):
    level, a = _level(rs, "my hearing's been getting worse over the last year, the telly's too loud", ELDER)
    assert level == 4, a.reasons


# ---------------------------------------------------------------- g. GP-level look-alikes
def test_g_the_room_spinning_for_seconds_when_rolling_over_is_a_gp_matter(rs):
    level, a = _level(rs, "when I turn over in bed the room spins for a few seconds then stops", ADULT)
    assert level == 4, a.reasons


def test_g_a_known_gout_flare_without_fever_is_a_gp_matter(rs):
    level, a = _level(
        rs, "my gout's flared up in my big toe again, it's red and swollen but I feel fine", ELDER
    )
    assert level == 4, a.reasons


def test_g_guard_a_hot_swollen_joint_with_a_fever_is_not_a_gout_flare(rs):
    level, a = _level(
        rs, "I've got gout and now my knee is hot and swollen and I've got a fever and shivers", ELDER
    )
    assert "URG-MSK-050" not in _rules(a), a.reasons


def test_g_a_pink_keyhole_wound_a_week_after_surgery_is_a_gp_matter(rs):
    level, a = _level(
        rs,
        "I had my gallbladder out keyhole last week and one of the scars is a bit red round the edge, no fever",
        ADULT,
    )
    assert level == 4, a.reasons


def test_g_guard_a_surgical_wound_with_pus_and_a_fever_is_sooner(rs):
    level, a = _level(rs, "after my operation the wound is red and leaking pus and I've got a fever", ADULT)
    assert level is not None and level <= 3, a.reasons


def test_g_a_smokers_cough_for_weeks_said_as_wick_is_a_gp_matter(rs):
    level, a = _level(
        rs, "I've had this cough for about six wick now and I smoke, no blood, not breathless", ADULT
    )
    assert level == 4, a.reasons


@pytest.mark.parametrize(
    ("said", "hours"),
    [("from two days he has a cough", 48.0), ("from one week she is not eating well", 168.0)],
)
def test_g_from_n_days_is_a_duration(rs, said, hours):
    assert max(v.value for v in durations(rs.normaliser(said), rs.answers)) == hours


def test_g_guard_back_from_a_trip_is_not_a_duration(rs):
    assert (
        durations(rs.normaliser("we got back from two weeks in Spain yesterday"), rs.answers)[0].value == 24.0
    )


def test_g_occasional_brief_skipped_beats_are_a_gp_matter(rs):
    level, a = _level(
        rs, "now and again my heart skips a beat then gives a thud, it only lasts a second", ADULT
    )
    assert level == 4, a.reasons


# ---------------------------------------------------------------- h. self-care look-alikes
def test_h_a_baby_straining_and_going_red_to_poo_is_self_care(rs):
    level, a = _level(
        rs,
        "my six week old goes red in the face and grunts when he's doing a poo, it's soft and he feeds well",
        NEWBORN,
    )
    assert level == 5, a.reasons


def test_h_guard_a_baby_grunting_with_each_breath_is_an_emergency(rs):
    level, a = _level(rs, "my three week old is grunting with every breath and not feeding", NEWBORN)
    assert level == 1, a.reasons


def test_h_silica_gel_as_a_recogniser_hears_it_is_self_care(rs):
    level, a = _level(
        rs, "my little one chewed one of them silly gel packets from a new handbag, she's fine", TODDLER
    )
    assert level == 5, a.reasons


def test_h_sunburn_told_as_red_raw_is_self_care(rs):
    level, a = _level(
        rs, "I dozed off in the sun and my shoulders are red raw, no blisters, I feel fine", ADULT
    )
    assert level == 5, a.reasons


def test_h_a_parents_own_panic_does_not_raise_a_childs_cold(rs):
    level, a = _level(
        rs, "my son's got a runny nose and a cough, no temperature, and I'm panicking a bit", SCHOOL
    )
    assert level == 5, a.reasons
    assert "URG-MH-001" not in _rules(a), a.reasons


def test_h_guard_a_caller_panicking_about_themselves_keeps_the_anxiety_level(rs):
    level, a = _level(rs, "I'm panicking, I've been like this all day and I can't calm down", ADULT)
    assert level is not None and level <= 4, a.reasons


def test_h_a_vaccine_named_after_meningitis_is_not_meningitis(rs):
    level, a = _level(
        rs,
        "he had his meningitis B jab today and has a slight temperature but he's feeding and smiling",
        TODDLER,
    )
    assert "RF-SEPSIS-002" not in _rules(a), a.reasons


def test_h_guard_meningitis_said_as_a_worry_with_a_rash_is_still_an_emergency(rs):
    level, a = _level(rs, "I'm worried it's meningitis, she has a fever and a rash that won't fade", SCHOOL)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- i. diabetes and spreading redness
def test_i_a_diabetic_with_cellulitis_of_the_shin_and_no_fever_is_same_day(rs):
    level, a = _level(
        rs, "I'm diabetic and my shin is red, hot and the redness is spreading, no temperature", ADULT
    )
    assert level == 3, a.reasons


def test_i_guard_a_diabetic_foot_sore_with_spreading_redness_is_raised(rs):
    level, a = _level(
        rs, "I'm type 2 and there's a sore on my foot and the red is spreading up to my ankle", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- j. possible DKA in plain words
@pytest.mark.parametrize(
    "text",
    [
        "she's type 1 and she's been sick all morning and the ketone strip says high",
        "my son's diabetic, tummy ache and vomiting since last night and he's breathing really deep",
    ],
)
def test_j_diabetes_with_high_ketones_or_deep_breathing_and_vomiting_is_seen_now(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level is not None and level <= 2, a.reasons
