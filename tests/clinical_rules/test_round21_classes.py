"""Families blind round 21 exposed (rule set 2026.12.11), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are E101-E148 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
CHILD = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. speech-recognition spellings
@pytest.mark.parametrize(
    ("text", "worst"),
    [
        ("i was sick and it looked like coffee grinds and i feel dizzy when i stand up", 2),
        ("i missed my dial isis session and my legs feel heavy and my heart keeps fluttering", 2),
        ("i take a pixel band and i cut my hand and it wont stop bleeding", 3),
    ],
)
def test_a_misheard_clinical_words_reach_the_rules(rs, text, worst):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= worst, a.reasons


# ---------------------------------------------------------------- b. cauda equina, the wipe said first
@pytest.mark.parametrize(
    "text",
    [
        "bad back for a week and when I wiped I couldn't feel it properly down there",
        "my back's been bad and now it's gone down both legs and I can't wee properly",
        "sciatica for days, and today when I was wiping I couldn't really feel anything",
    ],
)
def test_b_cauda_equina_in_other_words_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. false alarms that sent callers to 999
@pytest.mark.parametrize(
    "text",
    [
        "my kitten scratched my hand, a couple of thin scratches, I had a tetanus shot last year",
        "I had my flu shot yesterday and my arm is a bit sore",
        "I've had kidney stones twice before and this feels the same, painkillers are helping",
    ],
)
def test_c_no_emergency_script_for_everyday_words(rs, text):
    level, a = _level(rs, text, ADULT)
    assert not a.escalate, a.reasons
    assert level is None or level >= 3, a.reasons


def test_c_croup_already_treated_and_better_is_not_sent_back(rs):
    level, a = _level(
        rs, "my son's croup was seen yesterday and he was given dexamethasone, he's a lot better now", CHILD
    )
    assert level is None or level == 5, a.reasons


def test_c_guard_a_gunshot_is_still_major_trauma(rs):
    level, a = _level(rs, "my friend has been shot in the leg", {"subject": "other"})
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. everyday conditions, right level
@pytest.mark.parametrize(
    ("text", "ctx", "expected"),
    [
        (
            "I'm 26, burning behind my breastbone after a curry, Gaviscon sorts it out, no other symptoms",
            ADULT,
            5,
        ),
        (
            "I bumped my head on a cupboard door, it didn't knock me out, there's a small lump and a mild headache, I'm 40",
            ADULT,
            5,
        ),
        (
            "I fell off the bottom rung of the ladder, about a metre, my ribs are sore, breathing fine",
            ADULT,
            3,
        ),
        ("the neighbour's dog got me on the hand and there are puncture holes", ADULT, 3),
        (
            "I'm asthmatic, more wheezy since yesterday, I can talk in full sentences, peak flow about 70 percent",
            ADULT,
            3,
        ),
    ],
)
def test_d_everyday_conditions_get_their_level(rs, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, a.reasons
