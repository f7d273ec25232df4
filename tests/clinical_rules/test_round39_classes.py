"""Families blind round 39 exposed (scored once at rule set 2026.12.30, fixed in 2026.12.31), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AP901-AP948 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from clinical_rules.engine import analyse
from tests.clinical_rules.levels import level_of as _level
from tests.clinical_rules.levels import rule_ids as _rules

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}
TEEN = {"subject": "other", "age_band": "12_to_17"}
TODDLER = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. an allergic reaction in lay images
@pytest.mark.parametrize(
    "text",
    [
        "she had a prawn sandwich and her lips have gone all fat and her throat feels itchy",
        "after the nuts his face has gone puffy and there's a whistling sound when he breathes",
    ],
)
def test_a_swelling_with_a_funny_throat_or_a_whistling_breath_is_a_999_call(rs, text):
    level, a = _level(rs, text, SCHOOL)
    assert level == 1, a.reasons


def test_a_guard_a_scratchy_throat_with_a_cold_is_not_anaphylaxis(rs):
    level, a = _level(rs, "my throat feels scratchy and I've got a cold", ADULT)
    assert level == 5, a.reasons


def test_a_guard_a_croupy_squeak_only_when_crying_is_not_breathing_difficulty(rs):
    a = analyse(rs, "he makes a squeaky noise breathing in when he cries but he's calm now")
    assert "breathing_difficulty" not in {m.concept for m in a.mentions if m.assertion == "present"}


# ---------------------------------------------------------------- b. a cold, white limb
def test_b_a_cold_white_numb_leg_after_stopping_warfarin_is_an_emergency(rs):
    level, a = _level(
        rs,
        "my mum has AF and came off her warfare in for a tooth out, now her foot and ankle have gone cold and "
        "white and it's numb",
        ELDER,
    )
    assert level is not None and level <= 2, a.reasons


def test_b_guard_fingers_white_in_the_cold_that_recover_are_not_this(rs):
    level, a = _level(rs, "my fingers go white and cold in winter and then go red when I warm them up", ADULT)
    assert "RF-VASC-030" not in _rules(a), a.reasons


# ---------------------------------------------------------------- c. testicular pain in lay words
def test_c_a_teenagers_testicle_killing_him_is_seen_now(rs):
    level, a = _level(
        rs, "my son's thirteen and one of his nuts is really killing him since he woke up", TEEN
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. "no chance I'm pregnant"
@pytest.mark.parametrize(
    "said", ["there's no chance I'm pregnant", "no way she's pregnant", "I'm definitely not pregnant"]
)
def test_d_a_denied_pregnancy_is_not_a_pregnancy(rs, said):
    a = analyse(rs, said)
    assert [m.assertion for m in a.mentions if m.concept == "pregnant"] == ["negated"]


def test_d_guard_a_stated_pregnancy_still_counts(rs):
    a = analyse(rs, "I'm pregnant and I've had a bad headache all day")
    assert [m.assertion for m in a.mentions if m.concept == "pregnant"] == ["present"]


# ---------------------------------------------------------------- e. self-care and GP look-alikes
def test_e_hives_with_lips_and_breathing_fine_is_self_care(rs):
    level, a = _level(
        rs,
        "I've got nettle rash all over my legs since lunch, my lips and tongue are fine, breathing fine",
        ADULT,
    )
    assert level == 5, a.reasons


def test_e_guard_hives_after_a_food_allergy_trigger_is_not_self_care(rs):
    level, a = _level(rs, "I ate a peanut and now I've got hives all over and my lips are tingling", ADULT)
    assert level is not None and level <= 3, a.reasons


def test_e_a_simple_faint_in_a_hot_queue_that_recovered_is_self_care(rs):
    level, a = _level(
        rs,
        "my son fainted after standing for ages in a hot church, he came round within seconds and he's "
        "sitting up chatting now",
        SCHOOL,
    )
    assert level == 5, a.reasons


def test_e_guard_fainting_with_palpitations_is_not_a_simple_faint(rs):
    level, a = _level(
        rs, "she fainted standing in the queue, came round straight away but her heart was racing", TEEN
    )
    assert "URG-FAINT-010" not in _rules(a), a.reasons


def test_e_occasional_thump_then_skip_beats_are_a_gp_matter(rs):
    level, a = _level(rs, "every so often my heart goes thump then skip, no dizziness or chest pain", ADULT)
    assert level == 4, a.reasons


def test_e_passive_thoughts_if_i_werent_around_with_no_plan_are_same_day(rs):
    level, a = _level(
        rs,
        "sometimes I think people would be better off if I weren't around, but I haven't got a plan",
        ADULT,
    )
    assert level == 3, a.reasons


def test_e_a_urine_infection_with_frequency_is_not_new_diabetes(rs):
    level, a = _level(rs, "it stings when I pee and I'm going all the time and my tummy aches", ADULT)
    assert "URG-DIAB-020" not in _rules(a), a.reasons


# ---------------------------------------------------------------- f. an overdose told as "a whole strip"
def test_f_a_whole_strip_of_tablets_is_an_overdose(rs):
    level, a = _level(
        rs, "my brother took a whole blister pack of his amy trip tilling and he's really sleepy", TEEN
    )
    assert level == 1, a.reasons


def test_f_allergic_hives_after_a_peanut_are_not_self_care(rs):
    level, a = _level(rs, "I ate a peanut and now I've got hives all over my arms", ADULT)
    assert level is not None and level <= 3, a.reasons
