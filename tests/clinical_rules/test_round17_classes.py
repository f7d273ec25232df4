"""Families blind round 17 exposed (rule set 2026.12.7), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are P701-P748 in dev.yaml).

Safety families assert "at least" (a level this urgent or more); the guards assert what must not
happen; each family has at least four wordings.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
CHILD = {"subject": "child", "age_band": "2_to_11"}
PREGNANT = {"age_band": "18_to_64", "pregnant": True}


# ---------------------------------------------------------------- a. reduced fetal movements, plainly said
@pytest.mark.parametrize(
    "text",
    [
        "I'm 34 weeks and I've hardly felt anything today, she's normally kicking all evening",
        "I'm thirty eight weeks pregnant, I haven't felt him move all day",
        "I'm 30 weeks and I've barely felt anything since this morning, I've had some sugar and lain down",
        "I'm 37 weeks, I've not felt the baby at all this afternoon, usually he's really wriggly",
    ],
)
def test_a_reduced_movements_after_24_weeks_is_an_emergency(rs, text):
    level, a = _level(rs, text, PREGNANT)
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I've had a cold drink and I feel fine, just wanted to ask about my hay fever tablets",
        "I put a cold compress on my sprained ankle, it's a bit swollen",
        "I've been having cold drinks all day because of the heat, I'm not ill",
    ],
)
def test_a_guard_a_cold_drink_is_not_a_cold(rs, text):
    _level_, a = _level(rs, text, ADULT)
    assert "cold_symptoms" not in {c for r in a.reasons for c in r.concepts}, a.reasons


# ---------------------------------------------------------------- b. missed dialysis with symptoms
@pytest.mark.parametrize(
    "text",
    [
        "I missed my dialysis yesterday and now my legs feel really heavy and weak",
        "I'm on dialysis, I skipped Monday's session and my heart keeps doing a funny fluttering thing",
        "I couldn't get to dialysis on Friday and now I'm breathless lying down",
        "my dad's on dialysis, he missed his session and his heart's doing flip flops",
    ],
)
def test_b_missed_dialysis_with_symptoms_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- c. croup by severity
@pytest.mark.parametrize(
    "text",
    [
        "my daughter's three, she's got a barking cough like a seal, her breathing is quiet when she's resting",
        "my son is four and has a croupy cough since tonight, he's breathing fine and playing",
        "my little girl's two, her cough sounds like a sea lion, no noise when she breathes in",
        "he's five and has a barking cough, he's running about and eating",
    ],
)
def test_c_mild_croup_is_seen_the_same_day(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level == 3, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "my son's two, he's got a barking cough and there's a high pitched noise when he breathes in even when he's sitting still",
        "she's three with a croupy cough and now she's struggling to breathe and the skin's sucking in under her ribs",
        "he's got a barking cough and his lips have gone blue",
    ],
)
def test_c_guard_croup_with_stridor_or_distress_is_an_emergency(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- d. shingles on the trunk
@pytest.mark.parametrize(
    "text",
    [
        "I'm 68, I had a burning pain on the right side of my chest for two days and now there's a band of blisters there, breathing's fine",
        "I've got shingles I think, a strip of blisters round my left side of my chest and it stings, I feel okay otherwise",
        "I'm 55, a burning pain round my back and side and now a patch of little blisters just on that side, no other symptoms",
        "my mum's 74, she's had a stinging pain across her tummy on one side and now a blistery rash in a band there",
    ],
)
def test_d_shingles_with_trunk_pain_is_urgent_not_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


def test_d_guard_shingles_with_heart_attack_company_stays_an_emergency(rs):
    level, a = _level(
        rs,
        "I'm 70, I've got a band of blisters on my chest but now the chest pain has gone into my left arm and I'm sweating",
        ADULT,
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. a number is not a speed
@pytest.mark.parametrize(
    "text",
    [
        "I've got asthma, my peak flow is about 70 percent of my best, I'm using my blue inhaler every four hours and can talk fine",
        "my peak flow's at about 60 percent today, the blue inhaler helps, I can speak in full sentences",
        "I'm asthmatic, using my reliever about every four hours this week, talking fine",
    ],
)
def test_e_a_moderate_asthma_flare_is_urgent(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons
    assert "MOD-MECH-001" not in a.rule_ids


def test_e_guard_a_high_speed_crash_is_still_a_mechanism(rs):
    level, a = _level(rs, "we were doing about 70 mph when the car hit the barrier, I feel fine", ADULT)
    assert "MOD-MECH-001" in a.rule_ids or (level is not None and level <= 2), a.reasons


# ---------------------------------------------------------------- f. recurring headaches for weeks
@pytest.mark.parametrize(
    "text",
    [
        "I keep getting headaches at the end of the day for the last three weeks, paracetamol helps",
        "for about a month I keep getting a band-like headache most days, ibuprofen sorts it",
        "I've been getting headaches all the time for a few weeks now, nothing else wrong",
        "these headaches keep coming back for the past two months, they're not severe",
    ],
)
def test_f_recurring_headaches_for_weeks_see_a_gp(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


def test_f_guard_a_sudden_worst_headache_is_not_routine(rs):
    level, a = _level(
        rs, "I keep getting headaches for weeks but today it came on suddenly, the worst ever", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- g. running out of a medicine, well
@pytest.mark.parametrize(
    "text",
    [
        "my preventer inhaler's nearly run out and the repeat isn't ready till next week, I'm fine at the moment",
        "I'm about to run out of my blood pressure tablets and the surgery is closed",
        "I've run out of my sertraline, the prescription hasn't come through yet, I feel okay",
        "my mum's almost out of her thyroid tablets and her repeat is delayed",
    ],
)
def test_g_running_out_of_a_medicine_gets_a_routine_level(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


def test_g_guard_running_out_while_struggling_to_breathe_is_not_routine(rs):
    level, a = _level(rs, "I've run out of my blue inhaler and I'm really struggling to breathe", ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- h. pins and needles for weeks
@pytest.mark.parametrize(
    "text",
    [
        "I keep getting pins and needles in my thumb and first two fingers at night, it's been about a month",
        "for three weeks my right hand goes numb and tingly when I wake up, it goes off when I shake it",
        "I've had tingling in both feet for a few weeks now, otherwise well",
        "my fingers go numb when I'm driving, it's been happening for a couple of months",
    ],
)
def test_h_pins_and_needles_for_weeks_see_a_gp(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 4, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I suddenly got pins and needles down my left arm and my face feels droopy",
        "my dad's had numbness in his hand for weeks but since an hour ago his speech is slurred",
    ],
)
def test_h_guard_numbness_with_stroke_signs_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- i. a small burn
@pytest.mark.parametrize(
    "text",
    [
        "I touched the iron, there's a red mark about the size of a 10p, no blisters",
        "I caught my wrist on the oven door, it's red, about the size of my thumbnail, no blister, I cooled it",
        "splashed some hot oil on my arm, a red patch the size of a coin, it stings but no blisters",
        "I burnt my forearm on the grill pan, smaller than a fifty pee, just red",
    ],
)
def test_i_a_coin_sized_burn_without_blisters_is_self_care(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons


@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("I touched the iron, it's the size of a 10p but it's blistered", ADULT),
        ("I spilt boiling water on my hand, about the size of a coin and it's come up in a blister", ADULT),
    ],
)
def test_i_guard_a_blister_is_seen(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= 4, a.reasons


# ---------------------------------------------------------------- j. speech-recognition spellings
@pytest.mark.parametrize(
    "text",
    [
        "i mist my pill last night",
        "i mist my tablets this morning what should i do",
        "she mist her inhaler dose yesterday",
        "i think i mist yesterdays pill",
    ],
)
def test_j_mist_is_heard_as_missed(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 5, a.reasons
