"""Families blind round 20 exposed (rule set 2026.12.10), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are L001-L048 in dev.yaml).

Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
OTHER = {"subject": "other"}
CHILD = {"subject": "child", "age_band": "2_to_11"}
PREGNANT = {"age_band": "18_to_64", "pregnant": True}


# ---------------------------------------------------------------- a. the airway: can't swallow spit
@pytest.mark.parametrize(
    "text",
    [
        "my throat is so bad I can't even swallow my own saliva, I'm drooling",
        "he can barely swallow his spit and his voice sounds like he's got a hot potato in his mouth",
        "I have to sit forward to get my breath and I can't swallow my own spit",
        "sore throat, can hardly swallow my saliva and my voice is all muffled",
    ],
)
def test_a_cannot_swallow_saliva_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. obstetric emergencies in lay words
@pytest.mark.parametrize(
    "text",
    [
        "my waters broke and I can feel something slippery hanging down there",
        "I'm 38 weeks, waters have gone and I can see the cord coming out",
        "I think the cord is hanging out, my waters went ten minutes ago",
    ],
)
def test_b_cord_prolapse_is_level_1(rs, text):
    level, a = _level(rs, text, PREGNANT)
    assert level == 1, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm 34 weeks and my belly has gone rock hard and it's really painful and there's some blood",
        "I'm 30 weeks pregnant, my bump is hard as a rock and hurts all the time, and baby's gone quiet",
        "I'm thirty six weeks, my tummy's gone rock hard, constant pain and a bit of bleeding",
    ],
)
def test_b_a_hard_painful_bump_with_bleeding_is_level_1(rs, text):
    level, a = _level(rs, text, PREGNANT)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- c. salicylate toxicity
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        (
            "my grandad has been taking loads of aspirin for his knees, his ears are ringing and he's confused",
            OTHER,
        ),
        ("I've taken a lot of aspirin this week, my ears are buzzing and I'm breathing really fast", ADULT),
        ("she's had lots of Disprin, she's vomiting and she's drowsy and her ears are ringing", OTHER),
    ],
)
def test_c_aspirin_with_tinnitus_and_confusion_or_fast_breathing_is_level_1(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1, a.reasons


def test_c_guard_a_daily_low_dose_aspirin_question_is_not(rs):
    level, a = _level(rs, "I take one aspirin a day for my heart, can I have ibuprofen for a sprain?", ADULT)
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- d. a limb in plaster
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        (
            "my son's arm was put in plaster yesterday and now he's screaming, the painkillers aren't touching it",
            CHILD,
        ),
        ("I've got a cast on my leg since this morning and my toes are cold and white and tingling", ADULT),
        ("her wrist is in a cast and her fingers have gone really puffy and numb", CHILD),
    ],
)
def test_d_pain_or_compromised_fingers_in_a_cast_is_an_emergency(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. a limp is a gait, not a floppy child
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's five and she woke up with a limp, she's playing happily",
        "he's got a slight limp on his right leg since yesterday, no fall, eating fine",
        "my son's walking with a limp after football, he's fine otherwise",
    ],
)
def test_e_a_limp_is_not_unresponsiveness(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level == 3, a.reasons
    assert not a.escalate


def test_e_guard_a_floppy_child_is_still_an_emergency(rs):
    level, a = _level(rs, "my baby has gone all limp and floppy and won't wake up properly", CHILD)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- f. other words for known things
@pytest.mark.parametrize(
    ("text", "ctx", "worst"),
    [
        ("i think my toddler swallowed one of the bat trees from the remote", CHILD, 2),
        ("my mum is 70 and diabetic, she's sweating and paining in her jaw and left arm", OTHER, 1),
        ("I was grinding metal without goggles and now my eye feels scratchy and keeps watering", ADULT, 3),
    ],
)
def test_f_other_words_reach_the_rules(rs, text, ctx, worst):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= worst, a.reasons
