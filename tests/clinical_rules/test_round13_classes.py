"""Classes blind round 13 exposed (rule set 2026.12.3), each tested on sibling wordings written
from the guidance, none of them the round's own sentences (those are Y001-Y048 in dev.yaml).

Safety classes assert "at least" (a level this urgent or more); benign look-alikes and routine
gaps assert the exact level; each class has at least three wordings.
"""

import pytest

from clinical_rules import PatientContext, assess
from tests.clinical_rules.levels import CHILD, OTHER
from tests.clinical_rules.levels import level_of as _level


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("my son is 3, he banged his head", 36),
        ("my daughter's two, she bumped her head", 24),
        ("hi my little boys three he bumped his head", 36),
        ("my daughter is four and she knocked her head", 48),
        ("my son is 3 days late with his jabs", None),
        ("my daughter's two friends are ill", None),
    ],
)
def test_a_childs_bare_age_is_read(rs, text, months):
    """ "my son is 3" had no age, so the under-1 and age-band rules could not apply."""
    a = assess([text], context=PatientContext(**CHILD), ruleset=rs)
    assert a.facts.get("age_months") == months


# ---------------------------------------------------------------- safety: at least this urgent
AT_LEAST = [
    # a. a real red flag after a list of denials still counts (the denials do not reach it)
    (
        "list_then_flag",
        "I've got a headache, no temperature, no rash, but my neck is really stiff and I've got a fever",
        {},
        1,
    ),
    (
        "list_then_flag",
        "I've had a headache, no rash, no vomiting, and now I've got a stiff neck and a temperature of 39",
        {},
        1,
    ),
    ("list_then_flag", "no cough, no cold, but I've got crushing chest pain going down my left arm", {}, 1),
    # b. stroke in lay or misheard words (BE-FAST), with the caller minimising
    (
        "stroke_lay",
        "my dad's 74, since this afternoon his words are coming out muddled and he keeps dropping things from his left hand, he says he's just tired",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my mum's 80 and suddenly her left hand has gone clumsy, she can't do her buttons, she says she's fine just tired",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my grandad's face looks a bit lopsided and his words are coming out wrong, he says he's fine",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "since lunch my father keeps losing grip of his fork with his left hand and his mouth looks a bit wonky",
        OTHER,
        1,
    ),
    (
        "stroke_lay",
        "my husband is talking gibberish and his sentences are coming out in the wrong order",
        OTHER,
        1,
    ),
    # c. atypical heart attack (AHA): indigestion-like or odd heavy feeling with effort and company
    (
        "atypical_mi",
        "I'm 58 and diabetic, walking up the hill I got an odd heavy feeling in my chest and my jaw aches, I feel clammy",
        {},
        1,
    ),
    (
        "atypical_mi",
        "my mum is 67, she's had an indigestion feeling since she carried the shopping in, with an ache between her shoulder blades and she's grey and sweaty",
        OTHER,
        1,
    ),
    (
        "atypical_mi",
        "I'm a 49 year old woman, I got a strange heaviness when I was gardening, now my left arm aches and I'm exhausted and breathless",
        {},
        1,
    ),
    (
        "atypical_mi",
        "I'm 62, I just don't feel right, there's a funny feeling in my chest like indigestion that came on climbing the stairs, and I'm clammy",
        {},
        1,
    ),
    (
        "atypical_mi_any_age",
        "I got an indigestion feeling when I was running for the bus and now I'm sweaty and breathless",
        {},
        2,
    ),
    ("atypical_mi_any_age", "a heavy feeling in my chest came on walking up the hill and I feel off", {}, 2),
    (
        "atypical_mi_any_age",
        "I was digging the garden and got a weird indigestion feeling with an ache in my jaw",
        {},
        2,
    ),
    (
        "gi_bleed",
        "I'm on clopidogrel and for the last day my bowel movements have been jet black and smell awful",
        {},
        2,
    ),
    (
        "gi_bleed",
        "I'm 55, I take ibuprofen every day for my back and I've been passing black tarry stuff since last night",
        {},
        2,
    ),
    ("gi_bleed", "my stools have gone black and tarry since this morning and I'm on warfarin", {}, 2),
    (
        "gi_bleed",
        "I've been sick twice and it looked like coffee grounds, I'm on aspirin and naproxen",
        {},
        2,
    ),
    (
        "gi_bleed_shock",
        "my dad's poo is black and sticky and he nearly passed out getting up from the toilet",
        OTHER,
        1,
    ),
    (
        "gi_bleed_shock",
        "my husband vomited what looks like coffee grounds and now he's collapsed and really pale",
        OTHER,
        1,
    ),
    ("gi_bleed_shock", "I've had black sticky poo for two days and I feel dizzy when I stand", {}, 1),
    # e. carbon monoxide with a drowsy, unrousable or confused person -> 1
    (
        "co_drowsy",
        "we've had the log burner going all evening with the windows shut and we've all got headaches, my son is really sleepy and floppy",
        CHILD,
        1,
    ),
    (
        "co_drowsy",
        "the generator is running in the garage and my brother feels sick and is really drowsy",
        OTHER,
        1,
    ),
    (
        "co_drowsy",
        "the boiler's been making a funny noise and we've all got headaches, and my husband is confused and very sleepy",
        OTHER,
        1,
    ),
    (
        "co_drowsy",
        "since the gas heater went on we've all felt sick and my grandma's slumped in her chair, I can't get much out of her",
        OTHER,
        1,
    ),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "at_least"), AT_LEAST, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(AT_LEAST)]
)
def test_red_flag_classes_reach_their_level(rs, cls, text, ctx, at_least):
    level, a = _level(rs, text, ctx)
    assert level is not None and level <= at_least, (level, a.rule_ids)


# ---------------------------------------------------------------- exact level
EXACT = [
    # a. every item in a list of denials is negated; a denial of "worst" is not a denial of the headache
    (
        "list_denials",
        "I've got a headache since this morning, no fever or rash or stiff neck, it's not the worst I've ever had",
        {},
        4,
    ),
    (
        "list_denials",
        "headache for two days, no high temperature, no neck stiffness, no problem with light, not the worst headache ever",
        {},
        4,
    ),
    (
        "list_denials",
        "it's not the worst headache I've ever had but it's annoying, no stiff neck, no temperature",
        {},
        4,
    ),
    # b. clumsiness without a side or a sudden change is not a stroke sign
    ("not_stroke", "I'm a bit clumsy, I dropped a cup this morning", {}, None),
    ("not_stroke", "my son is clumsy and keeps dropping things, he's 7", CHILD, None),
    ("not_stroke", "I keep dropping my phone, I'm so clumsy", {}, None),
    # c. ordinary indigestion after food, no effort, no company: not a heart attack
    (
        "indigestion",
        "I'm 45, I've got that indigestion feeling after my dinner, burping a lot, I feel fine otherwise",
        {},
        5,
    ),
    (
        "indigestion",
        "I'm 50 and I get a heavy feeling in my stomach after big meals, a bit bloated, no other problems",
        {},
        5,
    ),
    ("indigestion", "I'm 60, indigestion feeling after a curry last night, gaviscon sorted it", {}, 5),
    # e. carbon monoxide with headaches only stays urgent, not an ambulance
    (
        "co_headache_only",
        "we've all had headaches since the new gas heater went in, they go when we leave the flat",
        {},
        2,
    ),
    ("co_headache_only", "our CO alarm keeps beeping and I've got a headache", {}, 2),
    (
        "co_headache_only",
        "since we lit the wood burner me and my wife both have headaches and feel a bit sick",
        {},
        2,
    ),
    # f. change in bowel habit for 3 weeks or more without red flags: GP (NICE NG12)
    (
        "bowel_change",
        "my dad's 72 and he says his bowel habit has been different for about six weeks, more constipated than usual, no bleeding",
        OTHER,
        4,
    ),
    (
        "bowel_change",
        "I'm 61, for the past three weeks my poo has been runnier than normal and I'm going three times a day, otherwise I feel fine",
        {},
        4,
    ),
    (
        "bowel_change",
        "I'm 64 and I've noticed a change in my bowel habit for two months, looser, no blood, no pain",
        {},
        4,
    ),
    # f. a missed dose of a usual medicine, feeling well: pharmacist advice
    (
        "missed_dose",
        "I forgot to take my metformin this morning, should I take it now or skip it, I feel fine",
        {},
        5,
    ),
    (
        "missed_dose",
        "I missed my blood pressure tablet yesterday, do I take two today? I feel absolutely fine",
        {},
        5,
    ),
    ("missed_dose", "silly question, I forgot my statin last night, what should I do, I'm well", {}, 5),
    # f. a child over one, minor bump, cried at once, back to normal: self-care (NICE NG232)
    (
        "minor_bump",
        "my two year old bumped her head on the table edge an hour ago, she cried straight away, there's a little lump, she's playing happily, not sick, not sleepy",
        CHILD,
        5,
    ),
    (
        "minor_bump",
        "my son is 3 years old, he banged his head on the door frame, small bump, cried right away and he's back to normal, no vomiting",
        CHILD,
        5,
    ),
    (
        "minor_bump",
        "my daughter is 4 years old and she knocked her head on the slide, she cried immediately, little lump, she's running around again, not drowsy",
        CHILD,
        5,
    ),
    # f. ... but the infant, blood thinner, mechanism, knocked-out and vomiting modifiers still escalate
    (
        "bump_escalates",
        "my baby is 5 months and bumped her head on the cot, there's a small lump, she cried straight away and is feeding fine",
        CHILD,
        3,
    ),
    (
        "bump_escalates",
        "my son is 2 years old and on warfarin for his heart, he bumped his head, small lump, cried at once, playing normally",
        CHILD,
        2,
    ),
    (
        "bump_escalates",
        "my 3 year old fell down the stairs and banged his head, cried straight away, he's playing normally",
        CHILD,
        2,
    ),
    (
        "bump_escalates",
        "my 3 year old bumped his head, cried straight away, playing now, but he's been sick twice",
        CHILD,
        2,
    ),
    (
        "bump_escalates",
        "my 4 year old hit her head and was knocked out for a few seconds, she cried straight away after and is playing now",
        CHILD,
        2,
    ),
    # dev-bar fixes found while folding round 13 in: an adult's small bump, feeling fine -> self-care (NHS)
    (
        "adult_minor_bump",
        "I banged my head on the kitchen cupboard, just a little bump, wasn't knocked out, not sick, I feel fine",
        {},
        5,
    ),
    (
        "adult_minor_bump",
        "I hit my head on the low beam in the loft, it's a small lump, no headache, I wasn't knocked out",
        {},
        5,
    ),
    (
        "adult_minor_bump",
        "I whacked my head on the open window, only a small bump, wasn't knocked out, not sick",
        {},
        5,
    ),
    (
        "adult_bump_escalates",
        "I bumped my head on the car door, small bump, and now I've been sick twice",
        {},
        2,
    ),
    (
        "adult_bump_escalates",
        "I'm on apixaban and I bumped my head on the cupboard, just a small bump",
        {},
        2,
    ),
    (
        "adult_bump_escalates",
        "I'm 82 and I bumped my head on the door, just a small bump, I feel fine",
        {},
        2,
    ),
    # a bit tired with a cold is part of the cold; weeks of exhaustion stay a GP matter
    ("tired_cold", "I'm just a bit tired and I've got a runny nose and a sore throat, no temperature", {}, 5),
    ("tired_cold", "a bit run down with this cold, coughing a bit, no fever, breathing fine", {}, 5),
    ("tired_cold", "I've got a cold and I'm a little tired, no temperature", {}, 5),
    ("tired_weeks", "I'm exhausted all the time for two months and I've got a cold", {}, 4),
    ("tired_weeks", "I've been completely exhausted for six weeks, no cold or anything", {}, 4),
    ("tired_weeks", "I'm worn out every day for the last two months and I don't know why", {}, 4),
    # mastitis in lay words with a temperature -> same day (NHS mastitis)
    (
        "mastitis",
        "I'm breastfeeding and there's a sore red area on my right breast, I've got a temperature of 38.2 and feel shivery",
        {},
        3,
    ),
    (
        "mastitis",
        "I'm breastfeeding, I've got a red hot patch on my left breast and feel achy and feverish",
        {},
        3,
    ),
    (
        "mastitis",
        "still breastfeeding and a hard swollen bit on my boob is really sore, temperature 38.5 and aching all over",
        {},
        3,
    ),
    # a chest infection with only mild breathlessness on the stairs -> same day, not ED
    (
        "mild_breathless_infection",
        "I'm 50, coughing up yellow phlegm for five days, temperature 38, I get a bit out of breath going up the stairs",
        {},
        3,
    ),
    (
        "mild_breathless_infection",
        "I'm 40 and I've had a chesty cough with green phlegm for six days and a fever of 38.2, a bit puffed out on the stairs",
        {},
        3,
    ),
    (
        "mild_breathless_infection",
        "chest infection for a week, temperature 38.4 and a little short of breath climbing the stairs",
        {},
        3,
    ),
]


@pytest.mark.parametrize(
    ("cls", "text", "ctx", "expected"), EXACT, ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(EXACT)]
)
def test_lookalikes_and_routine_get_their_level(rs, cls, text, ctx, expected):
    level, a = _level(rs, text, ctx)
    assert level == expected, (level, a.rule_ids)


def test_every_class_has_at_least_three_wordings():
    counts: dict[str, int] = {}
    for cls, *_rest in AT_LEAST + EXACT:
        counts[cls] = counts.get(cls, 0) + 1
    assert all(n >= 3 for n in counts.values()), counts
