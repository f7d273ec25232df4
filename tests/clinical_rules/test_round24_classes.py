"""Families blind round 24 exposed (rule set 2026.12.14), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are I401-I448 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
ELDER = {"subject": "other", "age_band": "65_plus"}
CHILD = {"subject": "child", "age_band": "2_to_11"}
BABY = {"subject": "child", "age_band": "3_months_to_2_years"}


# ---------------------------------------------------------------- a. acute limb ischaemia
@pytest.mark.parametrize(
    "text",
    [
        "my mum's 77, her left foot has gone cold and pale this afternoon and it's really painful",
        "since this morning my husband's arm is white and freezing cold and his fingers have gone numb",
        "his leg's gone a mottled blue and it's stone cold below the knee, he's in agony",
    ],
)
def test_a_a_cold_pale_painful_or_numb_limb_is_an_emergency(rs, text):
    level, a = _level(rs, text, ELDER)
    assert level is not None and level <= 2 and a.escalate, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my hands and feet are always cold in winter, they go a bit white in the cold but warm up again",
    ],
)
def test_a_guard_cold_hands_that_warm_up_are_not_ischaemia(rs, text):
    level, a = _level(rs, text, ADULT)
    assert "RF-VASC-030" not in a.rule_ids, a.reasons


# ---------------------------------------------------------------- b. pleuritic pain is chest pain
@pytest.mark.parametrize(
    "text",
    [
        "I've got a stabbing pain in my right side every time I take a deep breath and my calf is swollen",
        "there's a sharp pain in my chest when I breathe in and I've just come back from a long flight, my leg is sore and swollen",
    ],
)
def test_b_pleuritic_pain_with_a_painful_leg_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


def test_b_guard_a_knocked_rib_that_hurts_on_breathing_is_seen_within_hours(rs):
    text = (
        "I fell against the table and banged my ribs, it hurts when I breathe in but I'm not short of breath"
    )
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


# ---------------------------------------------------------------- c. injuries that will not be used
@pytest.mark.parametrize(
    "text",
    [
        "my daughter fell off the climbing frame and she won't use her arm, it's a bit swollen",
        "he tripped on the stairs and now he won't move his wrist, he keeps holding it",
    ],
)
def test_c_an_injured_limb_a_child_will_not_use_is_seen_within_hours(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level == 3, a.reasons


# ---------------------------------------------------------------- d. nappy rash
def test_d_nappy_rash_in_a_well_baby_is_self_care(rs):
    level, a = _level(
        rs, "my baby's got nappy rash, it's red and sore where the nappy goes, she's feeding fine", BABY
    )
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my baby's got nappy rash and a temperature and he's not feeding",
        "my baby's nappy area is red and there are purple spots on her tummy that don't fade",
    ],
)
def test_d_guard_an_unwell_baby_with_a_rash_is_not_self_care(rs, text):
    level, a = _level(rs, text, BABY)
    assert level is not None and level <= 3, a.reasons
