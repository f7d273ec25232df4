"""Families blind round 18 exposed (rule set 2026.12.8), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are G801-G848 in dev.yaml).

Round 18 asked for other registers of English (colloquial UK, Scots, Irish, US, Australian and
Indian English); the first family checks that the register rewrites in ``lexicon.yaml`` reach the
rules. Safety families assert "at least"; the guards assert what must not happen.
"""

import pytest

from tests.clinical_rules.levels import level_of as _level

ADULT = {"age_band": "18_to_64"}
CHILD = {"subject": "child", "age_band": "2_to_11"}


# ---------------------------------------------------------------- a. other registers, same red flag
@pytest.mark.parametrize(
    "text",
    [
        "I've been spewing all arvo and it looks like coffee grounds",
        "I chucked up and there was blood in it, and now I'm woozy",
        "been puking black stuff like coffee grounds since this morning",
        "I threw up twice and it was like coffee grounds, I feel giddy when I stand",
    ],
)
def test_a_vomiting_blood_said_colloquially_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "I'm on the kidney machine and I missed Wednesday, now I'm short of breath",
        "my dad's on the kidney machine, he skipped his session and his heart is racing",
        "I go on the kidney machine three times a week and I've got really bad palpitations",
        "I missed my kidney machine session and my legs have gone weak",
    ],
)
def test_a_the_kidney_machine_is_dialysis(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. a late period with pain and faintness
@pytest.mark.parametrize(
    "text",
    [
        "my period's about three weeks late and I've got a sharp pain low on the right and I nearly fainted",
        "I've missed a period and now there's a stabbing pain in my lower tummy and pain in my shoulder tip",
        "I'm not really sure if I'm pregnant, my period is a couple of weeks late, bad pain down below on one side and I feel faint",
        "no period for six weeks and now cramping pain low down and I keep going dizzy",
    ],
)
def test_b_possible_ectopic_without_a_test_is_level_1(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 1, a.reasons


def test_b_guard_a_late_period_alone_is_not_an_emergency(rs):
    level, a = _level(rs, "my period is a week late, I feel fine, should I do a test?", ADULT)
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- c. DKA with drowsiness
@pytest.mark.parametrize(
    ("text", "ctx"),
    [
        ("my son's type one diabetic, he's been vomiting all night and now he's so sleepy", CHILD),
        ("I'm type 1, I've been breathing really deep and fast and I'm really drowsy", ADULT),
        ("she's diabetic and her sugars are really high and she's very sleepy and hard to talk to", CHILD),
        (
            "my daughter has diabetes, she skipped her insulin, she's being sick and she's really drowsy",
            CHILD,
        ),
    ],
)
def test_c_diabetic_vomiting_or_deep_breathing_and_drowsy_is_level_1(rs, text, ctx):
    level, a = _level(rs, text, ctx)
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. giant cell arteritis
@pytest.mark.parametrize(
    "text",
    [
        "I'm 75, a new headache at my temples this week and my scalp is sore when I comb my hair",
        "I'm 68 and I've had a headache for days, my jaw aches when I'm chewing my food",
        "I'm seventy, headache on one side and it hurts to touch my scalp, eyesight's fine",
        "I'm 81, I've got a headache and tender temples and my jaw gets tired when I eat",
    ],
)
def test_d_new_headache_over_50_with_gca_features_is_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 3, a.reasons


def test_d_guard_gca_with_sight_loss_is_an_emergency(rs):
    level, a = _level(
        rs, "I'm 74, headache, sore scalp when I brush my hair, and I've lost the sight in one eye", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- e. flashes and floaters
@pytest.mark.parametrize(
    "text",
    [
        "since this morning I've got loads of new floaters in my left eye and little flashes of light",
        "I keep seeing black dots floating across my eye and flashes of light at the edge",
        "there are cobwebs in my vision since yesterday, no pain",
        "suddenly lots of floating specks in my right eye and flashing lights in the corner",
    ],
)
def test_e_new_floaters_or_flashes_are_same_day(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level == 3, a.reasons


def test_e_guard_a_curtain_across_the_vision_is_an_emergency(rs):
    level, a = _level(
        rs, "I had flashes and floaters and now there's a dark curtain coming across my vision", ADULT
    )
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- f. serotonin toxicity
@pytest.mark.parametrize(
    "text",
    [
        "I'm on citalopram and started tramadol yesterday, now I'm jittery, sweating and my legs keep twitching",
        "I took ecstasy last night and I'm on sertraline, my muscles are jerking and I feel really hot",
        "my mum's on venlafaxine and was given tramadol, she's agitated, sweating and shaking all over",
        "on fluoxetine and lithium, I've got diarrhoea, I'm restless and my arms keep jerking",
    ],
)
def test_f_serotonin_toxicity_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


def test_f_guard_an_ssri_question_alone_is_not_an_emergency(rs):
    level, a = _level(rs, "I'm on sertraline, can I take paracetamol for a headache?", ADULT)
    assert level is None or level >= 3, a.reasons


# ---------------------------------------------------------------- g. asthma said with apologies
@pytest.mark.parametrize(
    "text",
    [
        "sorry, I've had my inhaler about eight times in the last hour, sorry, I can't get a sentence out",
        "I've used the blue one ten times in an hour and it's not touching it",
        "sorry to bother you, my puffer isn't helping, I've had it twelve times this hour",
        "I can't get a whole sentence out, my asthma's bad, I've had loads of puffs in the last hour",
    ],
)
def test_g_severe_asthma_said_apologetically_is_an_emergency(rs, text):
    level, a = _level(rs, text, ADULT)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- h. everyday conditions, right level
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("our cat went for me and bit my hand, there are two little holes", 3),
        ("the neighbour's dog bit right into my calf, two puncture marks", 3),
        (
            "I'm breastfeeding and there's a red hot hard patch on my breast and I feel fluey with a temperature",
            3,
        ),
        (
            "I've got a sore red hard patch on the side of my boob and I'm shivery and achy, feeding my baby",
            3,
        ),
        ("for a few weeks there's been bright red blood on the toilet paper when I wipe, I feel well", 4),
        ("I've had a headache most evenings for about a month, paracetamol helps", 4),
        ("I'm on my last brown inhaler and going away next week, my chest is fine", 4),
        ("my kitten scratched my arm, just three lines, barely bled", 5),
    ],
)
def test_h_everyday_conditions_get_their_level(rs, text, expected):
    level, a = _level(rs, text, ADULT)
    assert level == expected, a.reasons


# ---------------------------------------------------------------- i. fetal movements and batteries, other words
@pytest.mark.parametrize(
    "text",
    [
        "I'm 33 weeks and I've barely felt a flicker all day",
        "I'm 29 weeks, normally she never stops, but I haven't felt a kick since this morning",
        "thirty five weeks pregnant and I've not had a single wriggle today",
    ],
)
def test_i_reduced_fetal_movements_other_words(rs, text):
    level, a = _level(rs, text, {"age_band": "18_to_64", "pregnant": True})
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "he's had one of those little round batteries out of the remote, one's missing",
        "the watch battery is missing and she was playing with it, I can't find it",
        "I think my toddler's got hold of a small silver battery from the car key",
    ],
)
def test_i_a_missing_button_battery_near_a_child_is_an_emergency(rs, text):
    level, a = _level(rs, text, {"subject": "child", "age_band": "3_months_to_2_years"})
    assert level is not None and level <= 2, a.reasons
