"""Families blind round 30 exposed (scored once at rule set 2026.12.21, fixed in 2026.12.22), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AF001-AF048 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules import load_ruleset
from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
SELF_ELDER = {"age_band": "65_plus"}
ELDER = {"subject": "other", "age_band": "65_plus"}
TEEN = {"subject": "child", "age_band": "12_to_17"}


# ---------------------------------------------------------------- a. the dropped g with no apostrophe
def test_a_the_normaliser_restores_a_dropped_g_only_for_words_the_rules_use():
    norm = load_ruleset().normaliser
    words = norm("been throwin up and sweatin, breathin funny, can't stop shakin").words
    assert {"vomiting", "sweating", "breathing", "shaking"} <= set(
        words
    )  # "throwing up" is folded to "vomiting"
    words = norm("a pain in my skin, took an aspirin, then it began again").words
    assert {"pain", "skin", "aspirin", "again"} <= set(words)
    assert not {"paing", "sking", "aspiring", "againg"} & set(words)


@pytest.mark.parametrize(
    "text",
    [
        "he's been throwin up all day, he's diabetic, type 1, and he's breathin really deep and fast",
        "she's sweatin buckets, feelin sick and there's a crushin pain in her chest",
    ],
)
def test_a_dialect_without_apostrophes_reads_as_the_same_words(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. "not feeling right" is unwell, not a denial
def test_b_not_feeling_right_then_being_sick_keeps_the_sickness(rs):
    level, a = _level(
        rs,
        "I'm not feeling right, been sick three times, sweating and my back's heavy up into my jaw",
        SELF_ELDER,
    )
    assert level == 1, a.reasons


# ---------------------------------------------------------------- c. a stroke said by its effect
@pytest.mark.parametrize(
    "text",
    [
        "his hand won't work properly and he keeps dropping things, started an hour ago",
        "since lunch her leg won't do what she wants and her words have gone all slurry",
    ],
)
def test_c_weakness_said_by_its_effect_is_a_stroke_call(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. "indigestion" with the arm and a sweat
def test_d_indigestion_with_pain_down_the_arm_and_a_sweat_is_a_heart_attack_call(rs):
    level, a = _level(
        rs,
        "probably just indigestion, I had a Gaviscon, but it's gone into my left arm and I'm clammy",
        ADULT,
    )
    assert level == 1, a.reasons


def test_d_guard_indigestion_after_a_curry_alone_is_not_cardiac(rs):
    level, a = _level(rs, "I've got indigestion after a big curry, burning in my throat, nothing else", ADULT)
    assert level is not None and level >= 4, a.reasons


# ---------------------------------------------------------------- e. testicle as a recognizer spells it
def test_e_pain_in_his_test_tickle_is_a_possible_torsion(rs):
    level, a = _level(rs, "my boy's got sudden pain in his test tickles and he's been sick", TEEN)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. an abscess
@pytest.mark.parametrize(
    "text",
    [
        "there's a red, really painful swelling in my armpit that's getting bigger every day",
        "I've got a boil on my leg that's throbbing and getting bigger",
    ],
)
def test_f_a_hot_painful_growing_lump_is_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


# ---------------------------------------------------------------- g. a headache with a cold
def test_g_a_headache_with_a_cold_is_self_care(rs):
    level, a = _level(
        rs, "I've got a streaming cold and a banging headache, still eating and drinking", ADULT
    )
    assert level == 5, a.reasons


def test_g_guard_a_headache_with_a_cold_and_a_stiff_neck_escalates(rs):
    level, a = _level(
        rs, "I've got a cold and a bad headache and now a stiff neck and the light hurts my eyes", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- h. routine asks
@pytest.mark.parametrize(
    "text",
    [
        "they said at A&E to see my GP about the results, how do I book that",
        "my dad had prostate cancer, I've no symptoms at all, do I need checking",
        "my blood pressure's been high on my home machine, I think my tablets need changing",
    ],
)
def test_h_routine_asks_get_a_gp_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


# ---------------------------------------------------------------- i/j. a mole compared with last year; a bee sting
def test_i_a_mole_bigger_than_last_year_sees_the_gp(rs):
    level, a = _level(
        rs, "my mole looks darker and bigger than it was last summer, it doesn't itch or bleed", ADULT
    )
    assert level == 4, a.reasons


def test_j_a_bee_sting_with_only_local_redness_is_self_care(rs):
    level, a = _level(
        rs, "um stung by a b on my arm just now it's red and sore there but I'm breathing fine", ADULT
    )
    assert level == 5, a.reasons
