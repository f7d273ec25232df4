"""Families blind round 14 exposed (rule set 2026.12.4), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are Z001-Z048 in dev.yaml).

Safety families assert "at least" (a level this urgent or more); the traps assert what must not
happen; each family has at least four wordings.
"""

import pytest

from clinical_rules import facts as F
from tests.clinical_rules.levels import CHILD
from tests.clinical_rules.levels import level_of as _level


# ---------------------------------------------------------------- a. a temperature in its spoken forms
@pytest.mark.parametrize(
    ("text", "celsius"),
    [
        ("she felt a bit hot so i checked and its 38.4", 38.4),
        ("he felt warm, i took it and it said thirty eight point five", 38.5),
        ("shes burning up, thermometer says 38 and a half", 38.5),
        ("she feels warm, it was a hundred and two on the ear thing", 38.9),
        ("his temp was 101 f this morning", 38.3),
        ("felt warm so we checked it, thirty nine", 39.0),
    ],
)
def test_a_reading_is_heard_in_its_spoken_forms(rs, text, celsius):
    tokens = rs.normaliser(text)
    assert [v.value for v in F.temperatures(tokens)] == [celsius]


@pytest.mark.parametrize(
    "text",
    [
        "im 38 weeks pregnant and feeling hot",
        "im 38 and i feel hot and shivery",
        "she feels warm, i gave her 2.5 ml of calpol at 10",
        "he was warm for 36 hours then it settled",
        "i checked on her at 40 past",
        "i took 2 paracetamol at 39 minutes past",
    ],
)
def test_ages_doses_times_and_pregnancy_weeks_are_not_temperatures(rs, text):
    assert F.temperatures(rs.normaliser(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "my baby's six weeks old, she felt warm so I checked and it's 38.3",
        "my son is 7 weeks old, he feels hot, it's thirty eight point two",
        "my 8 week old feels really warm, I took her temperature, 38 and a half",
        "my baby's four weeks, felt warm, the thermometer says a hundred and one",
        "my 10 week old daughter is warm, I checked it, 38.1",
    ],
)
def test_a_young_infant_reading_of_38_or_more_is_level_2_at_least(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level is not None and level <= 2, a.reasons


# ---------------------------------------------------------------- b. paracetamol over-used over time
STAGGERED = [
    "for two days I've been taking two paracetamol every two hours for my back",
    "I've had flu so I've been having paracetamol and Lemsip together since Friday",
    "I've been taking more than the packet says of my paracetamol because of my tooth",
    "she's had Calpol every hour or two since last night to keep her temperature down",
    "I've been on co-codamol and night nurse as well for three days",
    "every three hours I've taken two paracetamol since Tuesday",
]


@pytest.mark.parametrize("text", STAGGERED)
def test_b_staggered_paracetamol_overdose_is_level_2_at_least(rs, text):
    level, a = _level(rs, text, {})
    assert level is not None and level <= 2, a.reasons
    assert any(r.rule_id in ("RF-TOX-020", "RF-TOX-001") for r in a.reasons)


def test_b_a_large_single_overdose_stays_level_1(rs):
    level, _ = _level(rs, "I took two whole packets of paracetamol an hour ago", {})
    assert level == 1


@pytest.mark.parametrize(
    "text",
    [
        "how many paracetamol can I take in a day",
        "I took two paracetamol four hours ago, can I take more now for my headache",
        "can I take paracetamol with ibuprofen for a sore throat",
        "is it ok to give Calpol every four to six hours",
    ],
)
def test_b_a_correct_dose_question_is_not_a_staggered_overdose(rs, text):
    _, a = _level(rs, text, {})
    assert not any(r.rule_id == "RF-TOX-020" for r in a.reasons)


# ---------------------------------------------------------------- c. carbon monoxide, unnamed
CO_2 = [
    "me and my husband keep getting headaches and feeling sick, it goes away when we're at work, the boiler's quite old",
    "we've all been dizzy with headaches this week, me and the kids, better when we go out, and the gas fire's been on",
    "the whole family has had headaches since we put the heating on, and it clears when we're out of the house",
    "my partner and I both feel sick with bad heads every evening, fine at work, it's worse when we come home",
]


@pytest.mark.parametrize("text", CO_2)
def test_c_household_symptoms_that_ease_away_from_home_are_level_2_at_least(rs, text):
    level, a = _level(rs, text, {})
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "we've all had headaches since the heating went on, better outside, and now my son is really drowsy",
        "me and the kids have headaches and feel sick, fine when we're out of the house, and now my daughter is hard to wake",
        "the whole family has been dizzy since we lit the log burner and my husband has just collapsed",
        "we both feel sick with headaches, better away from home, and now my wife is confused",
    ],
)
def test_c_with_drowsiness_confusion_or_collapse_it_is_level_1(rs, text):
    level, a = _level(rs, text, {})
    assert level == 1, a.reasons


# ---------------------------------------------------------------- d. melaena and GI bleeding wording
@pytest.mark.parametrize(
    "text",
    [
        "when I go to the loo it's coming out black and sticky",
        "what comes out is black, like tar, since this morning",
        "I've been passing black stuff since yesterday",
        "my poo has gone black like tar",
        "when I go it's all black and really smelly",
        "there was blood in my vomit this morning",
        "I've been sick and it looked like coffee grounds",
    ],
)
def test_d_gut_bleeding_in_lay_words_is_level_2_at_least(rs, text):
    level, a = _level(rs, text, {})
    assert level is not None and level <= 2, a.reasons


@pytest.mark.parametrize(
    "text",
    [
        "it's coming out black like tar and I nearly passed out on the toilet",
        "what comes out is black and I fainted this morning",
        "my poos are black and sticky and I collapsed in the kitchen",
        "he's passing black stuff and he's gone really pale and clammy",
    ],
)
def test_d_with_collapse_or_shock_it_is_level_1(rs, text):
    level, a = _level(rs, text, {})
    assert level == 1, a.reasons


# ---------------------------------------------------------------- e. severe DKA
@pytest.mark.parametrize(
    "text",
    [
        "my son's 12, he's been so thirsty and weeing all the time, now he's vomiting and really drowsy",
        "my daughter has been drinking loads and peeing non stop, she's breathing deep and fast and we can barely wake her",
        "my boy's been weeing constantly and drinking gallons, he's been sick twice and he's hard to wake",
        "she's always thirsty and up to the toilet all night, now she's throwing up and she's very sleepy",
    ],
)
def test_e_ketoacidosis_with_drowsiness_is_level_1(rs, text):
    level, a = _level(rs, text, CHILD)
    assert level == 1, a.reasons


def test_e_thirst_and_weeing_alone_is_not_level_1(rs):
    level, a = _level(rs, "my son has been very thirsty and weeing all the time this week", CHILD)
    assert level != 1, a.reasons


# ---------------------------------------------------------------- f. routine gaps and over-triage, exact level
EXACT = [
    # a painless testicle lump: GP soon, not self-care
    ("testicle_lump", "I've noticed a small hard lump on my left testicle, it doesn't hurt", {}, 4),
    ("testicle_lump", "there's a pea sized lump on one of my balls, no pain, been there a week", {}, 4),
    ("testicle_lump", "my testicle has a lump on it that I found yesterday, it's not sore", {}, 4),
    ("testicle_lump", "found a lump in my scrotum in the bath, feel fine otherwise", {}, 4),
    # past clot, asking about a flight: GP or pharmacist advice, not "please rephrase"
    (
        "travel_clot",
        "I had a DVT two years ago and I'm flying to Australia next month, should I wear flight socks?",
        {},
        4,
    ),
    (
        "travel_clot",
        "I'm going long haul in the summer and I've had a blood clot before, what should I do?",
        {},
        4,
    ),
    (
        "travel_clot",
        "do I need blood thinners for my flight, I had a clot after my operation last year",
        {},
        4,
    ),
    (
        "travel_clot",
        "I'm worried about clots on the plane to Canada next week because I had one in my leg before",
        {},
        4,
    ),
    # "vowels" as ASR hears "bowels", weeks of change in an adult: GP
    ("bowels_asr", "I'm 67 and my vowels have changed for about a month, more often, no blood", {}, 4),
    ("bowels_asr", "for five weeks my vowels have been all over the place, no pain, I'm 58", {}, 4),
    ("bowels_asr", "I'm 70, my bowels have been looser than usual for six weeks, I feel fine", {}, 4),
    ("bowels_asr", "my vowels have been different for about two months, I'm sixty one", {}, 4),
    # snoring with pauses in a well child: GP, not level 1 "stopped breathing"
    (
        "snoring_pauses",
        "my son's 5 and he snores every night, and he stops breathing for a few seconds then snorts",
        CHILD,
        4,
    ),
    (
        "snoring_pauses",
        "my daughter snores really loudly and sometimes seems to hold her breath for a bit in her sleep",
        CHILD,
        4,
    ),
    (
        "snoring_pauses",
        "my six year old snores all night and pauses his breathing for a few seconds, he's well in the day",
        CHILD,
        4,
    ),
    (
        "snoring_pauses",
        "my little boy snores and it looks like he sort of stops breathing for a moment then gasps and carries on",
        CHILD,
        4,
    ),
    # red, hot skin spreading after a scratch: same-day
    (
        "spreading_redness",
        "I cut my hand on a thorn and the red bit has spread up my wrist since this morning",
        {},
        3,
    ),
    (
        "spreading_redness",
        "my leg is red and hot around a bite and the redness is getting bigger, I drew round it",
        {},
        3,
    ),
    (
        "spreading_redness",
        "I scraped my knee and now it's swollen and the red area has grown since yesterday",
        {},
        3,
    ),
    (
        "spreading_redness",
        "the skin round the graze is red and I marked around the edge and it's gone past the line",
        {},
        3,
    ),
]


@pytest.mark.parametrize(
    ("family", "text", "ctx", "expected"), EXACT, ids=[f"{f}-{i}" for i, (f, *_) in enumerate(EXACT)]
)
def test_f_routine_families_get_their_level(rs, family, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, (family, a.reasons)


def test_f_snoring_with_a_blue_floppy_episode_still_escalates(rs):
    level, _ = _level(
        rs, "my son snores and tonight he stopped breathing for a few seconds and went blue and floppy", CHILD
    )
    assert level == 1


@pytest.mark.parametrize(
    "text",
    [
        "I've got a painful swollen testicle that came on suddenly an hour ago",
        "I had a DVT years ago, I flew home yesterday and now I'm short of breath with chest pain",
    ],
)
def test_f_routine_readings_do_not_hide_an_emergency(rs, text):
    level, a = _level(rs, text, {})
    assert level is not None and level <= 2, a.reasons


def test_f_a_swollen_calf_after_a_flight_is_not_travel_advice(rs):
    """NHS DVT: a swollen painful calf needs an urgent GP appointment or 111 (level 3), not advice."""
    level, a = _level(
        rs, "I had a clot before and I've just flown back from Spain and my calf is swollen and sore", {}
    )
    assert level is not None and level <= 3
    assert not any(r.rule_id == "URG-LEG-020" for r in a.reasons)


# ---------------------------------------------------------------- f. benign look-alikes, with their guards
LOOKALIKES = [
    # chest-wall pain after a strain, under 40, breathing and sweating denied: not above level 4;
    # since 2026.12.5 a strain after lifting or moving something is self-care (URG-CHEST-013, four
    # blind authors gave it 5; test_round15_classes.py holds its guards)
    (
        "chest_wall",
        "I'm 29 and there's a sore bit on the right side of my chest that hurts when I press it, it started after I lifted some boxes, no shortness of breath, no sweating",
        5,
    ),
    (
        "chest_wall",
        "I'm 35, my ribs on the left side of my chest are tender when I twist, it came on after I helped move a wardrobe, breathing is fine and no sweats",
        4,
    ),
    (
        "chest_wall",
        "I'm 24, I've got a pain on the left side of my chest that only hurts when I press on it, started after I was lifting weights, no breathlessness, no sweating",
        5,
    ),
    (
        "chest_wall",
        "I'm thirty, sore spot on the left side of my chest since I moved the fridge, it hurts when I push on it, I can breathe fine, not sweaty",
        5,
    ),
    # heartburn in pregnancy with the pre-eclampsia signs denied: pharmacist
    (
        "preg_heartburn",
        "I'm 28 weeks pregnant with heartburn every night, no headache, no swelling, no blurred vision",
        5,
    ),
    (
        "preg_heartburn",
        "I'm 32 weeks pregnant and my heartburn is awful, I've no headache and no pain under my ribs",
        5,
    ),
    (
        "preg_heartburn",
        "I'm 22 weeks pregnant with bad indigestion, no headache, no swollen face, can I take Rennie?",
        5,
    ),
    (
        "preg_heartburn",
        "I'm 36 weeks pregnant, acid reflux all evening, no headache, no puffy hands, baby moving fine",
        5,
    ),
    # face swollen from a bad tooth, breathing and swallowing fine: urgent dentist the same day
    ("dental_swelling", "my cheek has swollen up from a bad tooth, I can breathe and swallow fine", 3),
    ("dental_swelling", "my jaw is puffy on one side from my wisdom tooth, no trouble breathing", 3),
    ("dental_swelling", "I've got an abscess on my back tooth and now my face is swollen on that side", 3),
    ("dental_swelling", "my toothache is worse and my gum and cheek have swelled up", 3),
]


@pytest.mark.parametrize(
    ("family", "text", "expected"), LOOKALIKES, ids=[f"{f}-{i}" for i, (f, *_) in enumerate(LOOKALIKES)]
)
def test_f_benign_lookalikes_get_their_level(rs, family, text, expected):
    level, a = _level(rs, text, {})
    assert level == expected, (family, a.reasons)


@pytest.mark.parametrize(
    "text",
    [
        # chest-wall reading stops at any cardiac or vascular feature, or age 40 and over
        "I'm 29, pain on the left side of my chest after lifting boxes, hurts when I press, and I'm sweating and short of breath",
        "I'm 55, sore on the left side of my chest since I moved the sofa, hurts when I press on it",
        # heartburn in pregnancy with a pre-eclampsia sign stays urgent
        "I'm 30 weeks pregnant with heartburn and a pain just below my ribs and a headache",
        "I'm 34 weeks pregnant with heartburn and my face and hands have suddenly swollen",
        # a swollen face from a tooth with trouble swallowing or breathing
        "my face has swollen up from a tooth abscess and I can't swallow properly",
        "my jaw is swollen from my wisdom tooth and I'm struggling to breathe",
    ],
)
def test_f_lookalike_guards_keep_warning_signs_urgent(rs, text):
    level, a = _level(rs, text, {})
    assert level is not None and level <= 3, a.reasons
    if "sweating" in text or "breathe" in text or "swallow" in text or "swollen" in text:
        assert level <= 2, a.reasons


def test_f_heartburn_in_pregnancy_without_the_denials_stays_same_day(rs):
    level, _ = _level(rs, "I'm 30 weeks pregnant and I've got heartburn", {})
    assert level == 3
