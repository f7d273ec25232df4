"""Families blind round 16 exposed (rule set 2026.12.6), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are Q601-Q648 in dev.yaml).

Safety families assert "at least" (a level this urgent or more); the guards assert what must not
happen; each family has at least four wordings.
"""

import pytest

from tests.clinical_rules.levels import OTHER
from tests.clinical_rules.levels import level_of as _level

SELF = {}
ADULT = {"age_band": "18_to_64"}


# ---------------------------------------------------------------- a. a denied intention to self-harm
@pytest.mark.parametrize(
    "text",
    [
        "I've been really down for a month, I'm not going to hurt myself, I just want to talk to someone",
        "I feel flat and tearful all the time, I'm not gonna harm myself or anything, but I need help",
        "my sleep's all over the place and I can't enjoy anything, I'm not going to kill myself, I promise",
        "I've been low since my divorce, I would never hurt myself, I just don't know who to speak to",
    ],
)
def test_a_a_denied_intention_is_not_the_crisis_script(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is None or level >= 3, a.reasons
    assert not a.escalate


@pytest.mark.parametrize(
    "text",
    [
        "I'm not going to hurt myself but honestly I want to die",
        "i'm not going to lie i want to end it all",
        "not gonna lie I've been thinking about killing myself",
        "I'm not going to hurt myself, I'm going to kill myself tonight",
        "she says she's not going to hurt herself but she's been cutting herself again",
    ],
)
def test_a_guard_a_denial_never_hides_a_disclosure(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons
    assert a.escalate


# ---------------------------------------------------------------- b. a bite that broke the skin
@pytest.mark.parametrize(
    "text",
    [
        "the dog next door bit my hand, it's broken the skin, it's not bleeding much now",
        "our cat sank its teeth into my wrist, there are two puncture wounds",
        "a dog bit my son's leg at the park and the teeth went in, I've washed it",
        "my friend's dog bit my finger, it went through the skin but it's stopped bleeding",
    ],
)
def test_b_a_bite_through_the_skin_is_seen_the_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "the puppy nipped my finger, it barely broke the skin and didn't bleed",
        "my cat scratched me, just a red mark, no blood at all",
        "a dog nipped my ankle through my jeans, it didn't break the skin, just a red mark",
    ],
)
def test_b_guard_a_nip_that_drew_no_blood_stays_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


# ---------------------------------------------------------------- c. a child's constipation
@pytest.mark.parametrize(
    "text",
    [
        "my son's five and he's only doing a poo every four or five days for the last three weeks, it hurts him",
        "my daughter is seven, she hasn't done a poo for a week at a time for about a month, and they're really hard",
        "my little girl's four, she's been constipated for three weeks, hard poos and she cries on the toilet",
        "my boy is eight and for a couple of weeks his poo has been like rabbit droppings and he strains to go",
    ],
)
def test_c_a_child_constipated_for_weeks_sees_a_gp(rs, text):
    level, a = _level(rs, text, {"subject": "child", "age_band": "2_to_11"})
    assert level == 4, a.reasons


def test_c_guard_a_child_constipated_and_vomiting_is_not_routine(rs):
    level, a = _level(
        rs,
        "my son's six, he hasn't done a poo for a week and now he keeps being sick and his tummy's swollen",
        {"subject": "child", "age_band": "2_to_11"},
    )
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- d. a missed contraceptive pill
@pytest.mark.parametrize(
    "text",
    [
        "I'm on the combined pill and I missed yesterday's, what should I do",
        "I take the mini pill and I forgot this morning's one",
        "I'm on the contraceptive pill, I think I forgot to take it last night",
        "quick question, I forgot yesterday's pill, I'm in the first week of the pack",
    ],
)
def test_d_a_missed_pill_gets_a_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


# ---------------------------------------------------------------- e. chest-wall strain in the young
@pytest.mark.parametrize(
    "text",
    [
        "I'm 22, I did a heavy chest press session yesterday and now it hurts on the left when I press on my ribs, no breathing problems, it feels like a pulled muscle",
        "I'm nineteen, after doing press ups yesterday my chest is sore when I push on it, I'm not short of breath or sweaty",
        "I'm 28, I was doing weights at the gym and now there's a sharp pain in my chest when I press on the breastbone, breathing's fine",
        "I'm thirty, I think I've pulled a muscle in my chest doing bench press, it hurts when I twist, no other symptoms",
    ],
)
def test_e_a_young_chest_wall_strain_is_not_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level >= 4, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm 25, I was doing weights and now my chest hurts when I press on it and I'm really short of breath",
        "I'm 58, I did bench press yesterday and my chest is tight and heavy and I'm sweaty",
        "I'm 24, after the gym my chest hurts when I press on it and I'm coughing up blood",
    ],
)
def test_e_guard_warning_signs_keep_chest_pain_urgent(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. a heart attack felt as indigestion
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        (
            "I'm 66, it feels like indigestion in the top of my stomach and I've come out in a sweat and feel sick",
            SELF,
        ),
        (
            "my husband's fifty-eight, he says it's like indigestion but he's grey and sweaty and feels faint",
            OTHER,
        ),
        ("I'm 52 and diabetic, I've got this indigestion feeling, I'm sweating and I feel breathless", SELF),
        ("mum's 81, she keeps saying it feels like bad indigestion, she's clammy and she's been sick", OTHER),
    ],
)
def test_f_indigestion_with_a_sweat_and_sickness_over_40_is_level_1(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1, a.reasons
    assert a.escalate


@pytest.mark.parametrize(
    "text",
    [
        "I'm 45, I've got indigestion after a big curry, no sweating or sickness, Gaviscon helped",
        "I'm 50, I get heartburn most nights after dinner, it settles with Rennie",
        "I'm 70, I've had a tummy bug since yesterday, diarrhoea and feeling sick, a bit sweaty with it",
    ],
)
def test_f_guard_ordinary_indigestion_or_a_tummy_bug_is_not_level_1(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is None or level >= 2, a.reasons


# ---------------------------------------------------------------- g. a modifier does not count a risk twice
@pytest.mark.parametrize(
    "text",
    [
        "I'm 24 weeks pregnant and it stings when I wee, no fever, no back pain",
        "I'm pregnant, about 14 weeks, and I keep needing to wee and it burns, otherwise fine",
        "I'm 30 weeks pregnant with cystitis symptoms since this morning, no temperature",
        "I'm eighteen weeks pregnant, burning when I pass water since yesterday, baby's moving fine",
    ],
)
def test_g_urinary_symptoms_in_pregnancy_stay_same_day_not_emergency(rs, text):
    level, a = _level(rs, text, {"age_band": "18_to_64", "pregnant": True})
    assert level == 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm 24 weeks pregnant, it burns when I wee and I've got a temperature of 38.6 and I'm shivery",
        "I'm 30 weeks pregnant with a water infection and now pain in my back on one side and a fever",
    ],
)
def test_g_guard_pregnancy_still_raises_a_rule_that_fired_for_another_reason(rs, text):
    level, a = _level(rs, text, {"age_band": "18_to_64", "pregnant": True})
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- h. washed out with a short bug
@pytest.mark.parametrize(
    "text",
    [
        "I've had diarrhoea since yesterday, no blood, keeping fluids down, just feel a bit washed out",
        "tummy bug since last night, been sick twice, drinking fine now, I'm exhausted though",
        "I've had a cold for three days and I'm knackered, no temperature, breathing's fine",
        "the runs since Monday, drinking lots, no blood, just drained",
    ],
)
def test_h_tired_with_a_short_bug_is_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


def test_h_guard_tired_with_signs_of_dehydration_is_not_self_care(rs):
    level, a = _level(
        rs,
        "I've had diarrhoea since yesterday and I'm exhausted, I haven't had a wee since this morning and I feel faint",
        ADULT,
    )
    assert level is not None and level <= 3, a.reasons
