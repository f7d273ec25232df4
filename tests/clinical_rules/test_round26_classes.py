"""Families blind round 26 exposed (scored once at rule set 2026.12.16, fixed in 2026.12.18), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AB601-AB648 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules import load_ruleset
from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SELF_ELDER = {"age_band": "65_plus"}
TEEN = {"subject": "child", "age_band": "12_to_17"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. the dropped g written with an apostrophe
def test_a_the_normaliser_restores_a_dropped_g_and_leaves_other_words_alone():
    norm = load_ruleset().normaliser  # the -ing words it restores are the ones the rules read
    words = norm("he's shakin' and sweatin', nothin' helps, goin' grey").words
    assert {"shaking", "sweating", "nothing", "going"} <= set(words)
    # a closing quote after a word that ends in -in is not a dropped g
    words = norm("she said 'it's just the pain' and 'my skin' and 'my insulin'").words
    assert {"pain", "skin", "insulin"} <= set(words) and not {"paing", "sking", "insuling"} & set(words)


@pytest.mark.parametrize(
    ("text", "ctx", "worst"),
    [
        (
            "I'm seventy, been gettin' this heavy achin' down both my arms, I'm sweatin' buckets and feel sick",
            SELF_ELDER,
            1,
        ),
        ("she's shakin' all over, burnin' up and not makin' any sense, she's eighty-two", ELDER, 2),
        ("he's bleedin' from his head after fallin' down the stairs and he's on warfarin", ELDER, 2),
    ],
)
def test_a_dialect_with_a_dropped_g_reads_as_the_same_words(rs, text, ctx, worst):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= worst, a.reasons


# ---------------------------------------------------------------- b. the long lie, answers that barely come
@pytest.mark.parametrize(
    "text",
    [
        "found my nan on the bathroom floor this morning, she must have been there for hours, she's barely answering me",
        "my grandad's been on the hall floor since last night, he's only just mumbling, his eyes keep shutting",
    ],
)
def test_b_found_on_the_floor_for_hours_and_barely_answering_is_an_emergency(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2, a.reasons


def test_b_guard_mumbling_in_sleep_with_a_cold_is_not_reduced_consciousness(rs):
    level, a = _level(rs, "he was mumbling in his sleep last night, he's fine today, just a cold", OTHER)
    assert level is not None and level >= 4, a.reasons


# ---------------------------------------------------------------- c. both arms and the jaw with a sweat
@pytest.mark.parametrize(
    "text",
    [
        "I've a heavy ache down both of my arms into my jaw and I've come out in a sweat, I'm sixty-six",
        "there's a dull ache in both my arms and my jaw's tight, I feel clammy and sick",
    ],
)
def test_c_ache_in_both_arms_and_jaw_with_a_sweat_is_a_heart_attack_call(rs, text):
    level, a = _level(rs, text, SELF_ELDER)
    assert level == 1, a.reasons


def test_c_guard_both_arms_sore_after_the_gym_is_not_cardiac(rs):
    level, a = _level(
        rs, "both my arms ache after lifting weights at the gym yesterday, no other symptoms", ADULT
    )
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- d. chemotherapy and tacrolimus as a recognizer spells them
@pytest.mark.parametrize(
    "text",
    [
        "i had kemo last week and now i feel shivery my temperature is thirty eight",
        "my wife is on key mo for breast cancer she's got a temperature of 38.4 and feels awful",
        "im on tack row limus after my liver transplant and ive got a fever and the shivers",
    ],
)
def test_d_fever_after_chemotherapy_or_on_transplant_drugs_goes_to_hospital(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. a boy's "private part"
@pytest.mark.parametrize(
    "text",
    [
        "my boy is twelve, he says his private part is really hurting and one side looks swollen",
        "my son has tummy ache and was sick, and now he says the pain is down in his private part",
    ],
)
def test_e_pain_in_a_boys_private_part_is_a_possible_torsion(rs, text):
    level, a = _level(rs, text, TEEN)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. the curtain coming in from the side
@pytest.mark.parametrize(
    "text",
    [
        "I've had new floaters since yesterday and now a grey shadow is creeping in from the top of my right eye",
        "flashes in my eye this morning and a black patch moving across from the side of my vision",
    ],
)
def test_f_floaters_with_a_shadow_coming_across_is_an_emergency_eye_referral(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


def test_f_guard_a_few_new_floaters_alone_stay_same_day(rs):
    level, a = _level(
        rs, "I've noticed a few new floaters in my left eye since this morning, vision otherwise fine", ADULT
    )
    assert level == 3, a.reasons


# ---------------------------------------------------------------- g. the Scots "no" after a pronoun
def test_g_hes_no_blue_is_a_denial(rs):
    level, a = _level(rs, "his asthma's bad wi' this cold but he's no blue and he can talk fine", TEEN)
    assert level is not None and level >= 3, a.reasons


@pytest.mark.parametrize(
    "text",
    ["he's no breathing, his lips are blue", "she's no longer breathing and her lips have gone blue"],
)
def test_g_guard_no_breathing_and_no_longer_breathing_still_escalate(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- h. routine requests get a level, not "please rephrase"
@pytest.mark.parametrize(
    "text",
    [
        "I've got type 2 diabetes and I just need to book my annual review and bloods, I'm fine otherwise",
        "could I get a repeat prescription for my inhaler please, I'm nearly out, my asthma is fine",
        "I need a fit note for work after my operation last month, I'm recovering well",
        "I've had a mole on my back for years and I'd like the doctor to have a look at it",
        "my hip has been paining me for a few months, worse on the stairs, I'd like it looked at",
    ],
)
def test_h_a_routine_request_gets_a_gp_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


def test_h_guard_a_routine_request_does_not_hide_a_red_flag(rs):
    level, a = _level(
        rs, "I need a repeat prescription for my GTN spray, I've got crushing chest pain now", SELF_ELDER
    )
    assert level == 1, a.reasons


# ---------------------------------------------------------------- i. harmless swallowed things
@pytest.mark.parametrize(
    "text",
    [
        "my little one has eaten a bit of crayon, she's absolutely fine and playing",
        "he swallowed some of the beads from a silica gel packet in my handbag, he's happy and well",
    ],
)
def test_i_non_toxic_things_swallowed_by_a_well_child_are_self_care(rs, text):
    level, a = _level(rs, text, TODDLER)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "he chewed a silica gel sachet and now he's been sick three times",
        "she had a silica gel packet and a button battery from the remote, I can't find the battery",
    ],
)
def test_i_guard_vomiting_or_a_battery_is_not_self_care(rs, text):
    level, a = _level(rs, text, TODDLER)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- j. glands up with a cold
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's got a sore throat and her glands in her neck are up and a bit tender, she's eating fine",
        "I've had a cold and now there are small tender lumps under my jaw",
    ],
)
def test_j_tender_neck_glands_with_a_cold_are_self_care(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level == 5, a.reasons


def test_j_guard_a_hard_gland_that_has_grown_for_weeks_sees_a_gp(rs):
    level, a = _level(
        rs,
        "there's a hard lump in my neck that's been getting bigger for weeks, I had a cold last month",
        ADULT,
    )
    assert level is not None and level <= 4, a.reasons


# ---------------------------------------------------------------- k. stress as a trigger, not a complaint
def test_k_a_tension_headache_brought_on_by_stress_is_self_care(rs):
    level, a = _level(
        rs, "I get these tension headaches when I'm stressed at work, paracetamol sorts them out", ADULT
    )
    assert level == 5, a.reasons


def test_k_guard_distress_said_for_itself_still_sees_someone(rs):
    level, a = _level(
        rs, "I'm so stressed I can't cope any more, I'm not sleeping and I cry every day", ADULT
    )
    assert level is not None and level <= 4, a.reasons


# ---------------------------------------------------------------- l. the swollen face explained by a tooth
def test_l_a_swollen_face_from_a_bad_tooth_is_an_urgent_dentist(rs):
    level, a = _level(
        rs, "my face swelled up on one side from a bad back tooth, I can swallow and breathe fine", ADULT
    )
    assert level == 3, a.reasons


def test_l_guard_a_dental_swelling_with_trouble_swallowing_is_an_emergency(rs):
    level, a = _level(rs, "my face has swollen from a bad tooth and now I can't swallow properly", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- m. a nosebleed told in base verbs
def test_m_a_nosebleed_that_stop_now_is_self_care(rs):
    level, a = _level(
        rs, "his nose start to bleed at school and I press it ten minutes and it stop now, he is fine", SCHOOL
    )
    assert level == 5, a.reasons


def test_m_guard_a_stopped_nosebleed_on_warfarin_is_still_seen(rs):
    level, a = _level(rs, "my nose start bleeding this morning, it stop now but I'm on warfarin", ELDER)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- n. vaccines and the immunosuppressed
def test_n_a_vaccine_question_on_immunosuppressants_goes_to_the_gp(rs):
    level, a = _level(
        rs, "I'm on methotrexate and my pharmacy offered me the shingles jab, is it safe?", ADULT
    )
    assert level == 4, a.reasons


def test_n_guard_asking_about_the_shingles_jab_is_not_shingles():
    rs = load_ruleset()
    level, a = _level(rs, "can I have the shingles vaccine, I'm seventy and well", SELF_ELDER)
    assert level == 5 and "URG-SKIN-009" not in {f.rule_id for f in a.reasons}, a.reasons
