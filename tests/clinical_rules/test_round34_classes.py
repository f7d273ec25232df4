"""Families blind round 34 exposed (scored once at rule set 2026.12.25, fixed in 2026.12.26), each
tested on sibling wordings written from the guidance, none of them the round's own sentences (those
are AJ401-AJ448 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other", "age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
PREGNANT = {"age_band": "18_to_64", "pregnant": True}
SCHOOL = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. shut in with an engine running
@pytest.mark.parametrize(
    "text",
    [
        "my son has shut himself in the car in the garage and the engine's running, he won't open the door",
        "the car engine is on inside the garage and my dad is in there, he's been very low",
    ],
)
def test_a_someone_shut_in_with_an_engine_running_is_a_999_call(rs, text):
    level, a = _level(rs, text, OTHER)
    assert level == 1, a.reasons


def test_a_guard_an_engine_running_outside_is_not_this(rs):
    level, a = _level(rs, "I left the car engine running on the drive while I scraped the ice off", ADULT)
    assert "RF-TOX-050" not in {f.rule_id for f in a.reasons}, a.reasons


# ---------------------------------------------------------------- b. fewer movements in plain words
@pytest.mark.parametrize(
    "text",
    [
        "I'm 36 weeks and the baby hasn't really been kicking today, I've only felt one or two movements",
        "at 30 weeks the baby's not been moving much since last night",
    ],
)
def test_b_fewer_fetal_movements_are_seen_now(rs, text):
    level, a = _level(rs, text, PREGNANT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. cannot pass water, in dialect
def test_c_unable_to_pass_water_with_a_swollen_belly_is_an_emergency(rs):
    level, a = _level(
        rs, "he cannot pass watter since last night and his belly's swollen, he's got prostate trouble", ELDER
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. a rash after a new antibiotic
def test_d_a_rash_after_starting_an_antibiotic_is_same_day(rs):
    level, a = _level(
        rs,
        "I started amoxi cillin two days ago and now I've got an itchy red rash on my back, breathing fine",
        ADULT,
    )
    assert level == 3, a.reasons


def test_d_guard_lip_swelling_after_an_antibiotic_is_an_emergency(rs):
    level, a = _level(
        rs, "I started penicillin today and my lips are swelling up and my throat feels tight", ADULT
    )
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. a child drinking and weeing more
def test_e_a_child_drinking_and_weeing_more_with_weight_loss_is_same_day(rs):
    level, a = _level(
        rs,
        "my daughter's six and she's weeing all the time and drinking loads, and she's lost weight",
        SCHOOL,
    )
    assert level == 3, a.reasons


def test_e_guard_been_drinking_loads_is_not_a_hangover(rs):
    level, a = _level(rs, "he's been drinking loads of water and weeing all the time this week", SCHOOL)
    assert "URG-MINOR-001" not in {f.rule_id for f in a.reasons}, a.reasons
