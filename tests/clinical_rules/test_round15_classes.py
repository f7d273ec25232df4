"""Families blind round 15 exposed (rule set 2026.12.5), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are B001-B048 in dev.yaml, R001-R048 as written blind).

Safety families assert "at least" (a level this urgent or more); the guards assert what must not
happen; each family has at least four wordings.
"""

import pytest

from tests.clinical_rules.levels import CHILD, OTHER
from tests.clinical_rules.levels import level_of as _level

SELF = {}


# ---------------------------------------------------------------- a. a suicide plan or means in lay words
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("ive been stockpiling my sleeping pills for a month, theres about sixty now", SELF),
        ("I've counted out all my painkillers on the kitchen side, I just can't face another day", SELF),
        ("my dad's been hoarding his tablets in his drawer and he told me tonight is the night", OTHER),
        ("i've written a letter for the kids and i won't be here tomorrow", SELF),
        ("I've got a rope ready in the garage, I'm just done", SELF),
        ("he keeps saying he's going to drive his car into a wall on the motorway", OTHER),
        ("I'm going to step out in front of a lorry", SELF),
        ("honestly I've had it, I've saved up my co-codamol and tonight's the night", SELF),
    ],
)
def test_a_a_plan_or_means_is_level_1_with_the_crisis_script(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1, a.reasons
    assert a.escalate
    assert a.script == "mental_health"


@pytest.mark.parametrize(
    "text",
    [
        "I've had enough of this cough, it's been going on for weeks",
        "I've had enough of this back pain, the ibuprofen isn't touching it",
        "we're saving up for a holiday and I take my blood pressure tablets every morning",
        "I've lined up a GP appointment for my tablets review next week",
    ],
)
def test_a_fed_up_or_saving_without_intent_is_not_suicidal(rs, text):
    level, a = _level(rs, text, SELF)
    assert level != 1, a.reasons
    assert a.script != "mental_health"


def test_a_a_past_attempt_while_calling_about_something_else_stays_history(rs):
    level, a = _level(
        rs, "I took an overdose five years ago but today I'm calling about my sore throat", SELF
    )
    assert level != 1, a.reasons


# ---------------------------------------------------------------- b. cauda equina in lay words
@pytest.mark.parametrize(
    "text",
    [
        "back pain for a fortnight and now my bum feels numb and I can't really tell when I need a wee",
        "bad back and today my inner thighs and bottom have gone numb, like pins and needles",
        "my back has been killing me and this morning I couldn't feel myself pee, and my bottom's numb",
        "my lower back's agony and the inside of my thighs feels numb, and I've wet myself without knowing",
        "my back went last week, now it's numb between my legs",
    ],
)
def test_b_back_pain_with_saddle_numbness_or_bladder_change_is_level_2_at_least(rs, text):
    level, a = _level(rs, text, SELF)
    assert level is not None and level <= 2, a.reasons


def test_b_denied_signs_keep_plain_back_pain_routine(rs):
    level, a = _level(rs, "I've had back pain for a week, no numbness, weeing and pooing normal", SELF)
    assert level is not None and level >= 3, a.reasons


# ---------------------------------------------------------------- c. testicular torsion in lay words
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("my son's fourteen, woke with terrible pain in his privates on one side and he's been sick", CHILD),
        ("my lad is sixteen and he's got sudden agony down below, in his balls, started an hour ago", CHILD),
        ("my boy's eleven and says his tummy hurts but actually it's his bits, one side, really bad", CHILD),
        ("I'm nineteen and I woke up with a really severe pain in one of my nuts, came on suddenly", SELF),
        ("my son is twelve, his private parts are really hurting on the left side", CHILD),
    ],
)
def test_c_sudden_pain_in_a_boys_private_parts_is_level_2_at_least(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= 2, a.reasons


def test_c_a_girls_stinging_wee_is_not_read_as_torsion(rs):
    _, a = _level(rs, "my daughter's got pain down below when she wees, it stings", CHILD)
    assert "URG-GU-005" not in {f.rule_id for f in a.reasons}


# ---------------------------------------------------------------- d. reduced fetal movements
@pytest.mark.parametrize(
    "text",
    [
        "I'm 32 weeks and the baby's been really quiet today, not kicking like usual",
        "I'm twenty eight weeks pregnant and I haven't felt him move much since yesterday",
        "I'm thirty four weeks and I've barely felt any kicks this afternoon, usually he's really active",
        "she's 30 weeks and says the baby's not moving as much as normal today",
        "I'm 26 weeks, fewer kicks than normal today and she's been really still",
    ],
)
def test_d_baby_moving_less_in_later_pregnancy_is_level_2_maternity_now(rs, text):
    level, a = _level(rs, text, SELF)
    assert level is not None and level <= 2, a.reasons
    assert a.escalate


@pytest.mark.parametrize(
    "text",
    [
        "my daughter's been really quiet today, she's fifteen and won't talk to me",
        "he's been really quiet since school, he's eight and has a bit of a cold",
        "I'm 30 weeks and the baby's kicking loads, just wanted to ask about heartburn",
    ],
)
def test_d_a_quiet_child_or_an_active_baby_is_not_reduced_movements(rs, text):
    _, a = _level(rs, text, SELF)
    assert not {"RF-PREG-005", "RF-PREG-013"} & {f.rule_id for f in a.reasons}


# ---------------------------------------------------------------- e. over-triage with a safe guard
BABY = {"subject": "child", "age_band": "under_3_months"}


@pytest.mark.parametrize(
    "text",
    [
        "my son had a nosebleed an hour ago, we pinched his nose and it stopped after about ten minutes",
        "I had a nosebleed at lunchtime, it's stopped now, I'm not on any blood thinners",
        "nosebleed two hours ago, stopped on its own, just want advice",
        "my daughter's nose bled this morning, the bleeding has stopped and she's fine",
    ],
)
def test_e_a_nosebleed_that_has_stopped_is_self_care(rs, text):
    level, a = _level(rs, text, SELF)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my nose has been bleeding for half an hour and it hasn't stopped",
        "my nosebleed started twenty minutes ago and it still hasn't stopped, I'm pinching it",
        "I had a nosebleed an hour ago, it stopped after ten minutes, I'm on warfarin",
    ],
)
def test_e_a_nosebleed_still_going_or_on_blood_thinners_is_not_self_care(rs, text):
    level, a = _level(rs, text, SELF)
    assert level is not None and level <= 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my daughter is seven weeks old and spits up a little milk after her feeds, she's gaining weight well",
        "our baby's ten weeks, brings up little mouthfuls after every bottle, he's putting on weight fine",
        "she's nine weeks, she possets after most feeds but she's feeding well and putting on weight nicely",
        "my six week old spits up some milk with most feeds, nothing green, weighing fine at the clinic",
    ],
)
def test_e_a_posseting_baby_gaining_weight_is_self_care(rs, text):
    level, a = _level(rs, text, BABY)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my baby is eight weeks and brings up milk after feeds, it's gone green today",
        "my seven week old's sick shoots out across the room after every feed and he's putting on weight fine",
        "she's six weeks, brings up milk after feeds with some blood in it, she's gaining weight",
        "my ten week old brings up milk after feeds and now he's not feeding and he's putting on weight fine",
    ],
)
def test_e_green_bloody_or_projectile_vomit_or_poor_feeding_is_not_self_care(rs, text):
    level, a = _level(rs, text, BABY)
    assert level is not None and level <= 3, a.reasons


# ---------------------------------------------------------------- e. a chest-wall strain after lifting
@pytest.mark.parametrize(
    "text",
    [
        "I'm 31, I carried a fridge up the stairs on Sunday and now my ribs on the right side are sore when I press, I feel fine otherwise",
        "I'm twenty four, I lifted a washing machine yesterday and the left side of my chest hurts when I twist, I can breathe fine",
        "I'm 35 and I helped my mate shift a piano at the weekend, it's sore in my chest on the right side when I press on it",
        "I'm 27, since moving a bed yesterday I've got a sore spot on the left side of my chest that hurts when I press it",
    ],
)
def test_e_a_chest_wall_strain_after_lifting_under_40_is_self_care(rs, text):
    level, a = _level(rs, text, SELF)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm 52, I lifted a washing machine yesterday and the left side of my chest hurts when I press it",
        "I'm 30, I moved a sofa yesterday, my chest hurts when I press it and I'm sweaty and sick",
        "I'm 29, I moved a wardrobe yesterday, my chest is sore when I press it and I'm a bit short of breath",
        "I'm 33 and I get a pain in my chest whenever I lift boxes at work, it goes when I rest",
    ],
)
def test_e_older_warning_signs_or_effort_pain_are_not_self_care(rs, text):
    level, a = _level(rs, text, SELF)
    assert level is not None and level <= 4, a.reasons


# ---------------------------------------------------------------- e. a high blood pressure reading, no symptoms
@pytest.mark.parametrize(
    "text",
    [
        "my blood pressure at the pharmacy was 165/95, I feel fine, no headache, I'm 60",
        "the machine at home says my bp is one fifty eight over ninety four, I feel fine",
        "had my blood pressure checked at work, it was 170 over 100, no symptoms at all",
        "I went to the chemist for a check and they said it was one sixty five over ninety, I feel alright",
    ],
)
def test_e_a_high_reading_without_symptoms_is_gp_level_4(rs, text):
    level, a = _level(rs, text, SELF)
    assert level == 4, a.reasons


@pytest.mark.parametrize(
    ("text", "most"),
    [
        ("my blood pressure is 190 over 110 and I feel fine", 3),
        ("my blood pressure is 170 over 100 and I've got a thunderclap headache and blurred vision", 1),
        ("I'm 32 weeks pregnant and my blood pressure was 150 over 95 at the pharmacy", 2),
    ],
)
def test_e_a_very_high_reading_symptoms_or_pregnancy_are_more_urgent(rs, text, most):
    level, a = _level(rs, text, SELF)
    assert level is not None and level <= most, a.reasons


def test_e_blood_pressure_tablets_are_not_a_reading(rs):
    _, a = _level(rs, "I take blood pressure tablets and I've got a sore throat", SELF)
    assert not {"URG-BP-001", "URG-BP-002"} & {f.rule_id for f in a.reasons}
