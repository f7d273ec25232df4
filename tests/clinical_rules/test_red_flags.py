"""Each red-flag family fires on lay wording, including ASR damage, and escalates."""

import pytest

from clinical_rules import PatientContext, UrgencyLevel, assess

CHILD = PatientContext(subject="child")
OTHER = PatientContext(subject="other")

FAMILIES = [
    # (family, statement, expected level, expected rule prefix)
    ("cardiac", "it feels like an elephant is sitting on my chest", 1, "RF-CARDIAC"),
    ("cardiac", "um i got chess pain and im all sweaty", 1, "RF-CARDIAC"),
    ("cardiac", "pain in my chest going down my left arm", 1, "RF-CARDIAC"),
    ("stroke", "my face is drooping", 1, "RF-STROKE"),
    ("stroke", "i cant lift my left arm", 1, "RF-STROKE"),
    ("stroke", "his speech is all slurred", 1, "RF-STROKE"),
    ("stroke", "suddenly i cant see out of one eye", 1, "RF-STROKE"),
    ("breathing", "i cant catch my breath", 1, "RF-BREATH"),
    ("breathing", "his lips are going blue", 1, "RF-BREATH"),
    ("breathing", "my inhaler isnt working and im wheezing", 1, "RF-BREATH"),
    ("anaphylaxis", "my throat is closing up after eating peanuts", 1, "RF-ANAPH"),
    ("anaphylaxis", "we had to use his epipen", 1, "RF-ANAPH"),
    ("bleeding", "it wont stop bleeding", 1, "RF-BLEED"),
    ("bleeding", "theres blood everywhere", 1, "RF-BLEED"),
    ("collapse", "my husband collapsed and isnt responding", 1, "RF-LOC"),
    ("collapse", "shes not breathing", 1, "RF-BREATH"),
    ("seizure", "my son is having a fit", 1, "RF-SEIZ"),
    ("mental_health", "i want to kill myself", 1, "RF-MH"),
    ("mental_health", "i dont want to live anymore", 1, "RF-MH"),
    ("mental_health", "im going to kill him", 1, "RF-MH"),
    ("overdose", "she took a whole packet of paracetamol", 1, "RF-TOX"),
    ("poisoning", "my toddler swallowed a button battery", 1, "RF-TOX"),
    ("sepsis", "he has a fever and hes really confused", 1, "RF-SEPSIS"),
    ("meningitis", "a rash that doesnt fade when i press a glass on it", 1, "RF-MENING"),
    ("meningitis", "fever and a stiff neck", 1, "RF-MENING"),
    ("headache", "worst headache of my life", 1, "RF-NEURO"),
    ("trauma", "he was hit by a car", 1, "RF-TRAUMA"),
    ("vomiting_blood", "ive been throwing up blood", 2, "RF-BLEED"),
    ("fainting", "i fainted and now i have chest pain", 1, "RF-CARDIAC"),
]


@pytest.mark.parametrize(
    "family,text,level,prefix", FAMILIES, ids=[f"{f}:{t[:30]}" for f, t, _l, _p in FAMILIES]
)
def test_red_flag_family(rs, family, text, level, prefix):
    a = assess([text], ruleset=rs)
    assert a.level == level, a.explanation()
    assert a.escalate, a.explanation()
    assert any(f.rule_id.startswith(prefix) for f in a.reasons), a.explanation()
    assert a.next_question is not None and a.next_question.kind == "emergency"
    assert a.next_question.fixed


def test_pregnancy_red_flags(rs):
    preg = PatientContext(pregnant=True)
    assert assess(["i have bad pain in my tummy"], context=preg, ruleset=rs).escalate
    bleeding = assess(["im 30 weeks pregnant and bleeding heavily soaking pads"], ruleset=rs)
    assert bleeding.level == UrgencyLevel.CALL_EMERGENCY_SERVICES and bleeding.escalate
    # said in words, pregnancy counts even without the session form
    words = assess(["im pregnant and ive got pain in my belly"], ruleset=rs)
    assert words.escalate and words.facts["pregnant"] is True


def test_infant_fever_under_three_months(rs):
    a = assess(["my six week old has a temperature of 38.2"], context=CHILD, ruleset=rs)
    assert a.level == UrgencyLevel.EMERGENCY_DEPARTMENT_NOW and a.escalate
    assert a.facts["age_band"] == "under_3_months"
    assert "RF-INFANT-001" in a.rule_ids
    older = assess(["my six year old has a temperature of 38.2"], context=CHILD, ruleset=rs)
    assert older.level == UrgencyLevel.SELF_CARE and not older.escalate


def test_baby_fever_without_age_is_provisional_and_asks_age(rs):
    a = assess(["my baby has a fever"], ruleset=rs)
    assert a.level == UrgencyLevel.EMERGENCY_DEPARTMENT_NOW  # conservative until the age is known
    assert not a.escalate
    pending = [f for f in a.reasons if f.assertion == "pending"]
    assert pending and pending[0].rule_id == "RF-INFANT-001"
    assert a.next_question.question_id == "general.age"
    older = assess(["my baby has a fever"], ruleset=rs, answers={"general.age": "she's ten months"})
    assert older.level == UrgencyLevel.PRIMARY_CARE_DAYS and not older.escalate
    younger = assess(["my baby has a fever"], ruleset=rs, answers={"general.age": "five weeks"})
    assert younger.level == UrgencyLevel.EMERGENCY_DEPARTMENT_NOW and younger.escalate


def test_numeric_temperature_counts_as_fever(rs):
    a = assess(["my daughter is 3 weeks old and her temperature is 100.8 degrees"], ruleset=rs)
    assert a.facts["temperature_c"] == pytest.approx(38.2, abs=0.1)
    assert a.escalate
    normal = assess(["my 3 week old's temperature is 37.1"], ruleset=rs)
    assert not normal.escalate


@pytest.mark.parametrize(
    "text",
    [
        "a pain in the centre of my chest that's going into my jaw",
        "my chest hurts and now it's spreading up to my neck",
        "tight chest, and it shoots down into my left arm",
    ],
)
def test_spread_of_chest_pain_named_by_the_verb_alone(rs, text):
    a = assess([text], ruleset=rs)
    assert a.level == 1 and a.escalate and "RF-CARDIAC-001" in a.rule_ids, a.explanation()


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("my husband fell off the roof of the garage", 1),  # from height: major trauma
        ("she fell about fifteen feet from the scaffolding", 1),
        ("I fell off a stepladder and hurt my wrist", 2),  # height unknown: seen in the ED
        ("my mum tumbled down the stairs", 2),
    ],
)
def test_falls_by_height(rs, text, level):
    a = assess([text], ruleset=rs)
    assert a.level == level, a.explanation()


# Rule families added in 2026.11.2 (gaps found by the first blind held-out round), each in
# wording of our own, including sibling phrasings the round did not use.
NEW_FAMILIES = [
    # (statement, context, expected level, rule that must fire)
    ("the blood is pumping out of his leg", None, 1, "RF-BLEED-001"),
    ("he sliced his arm on a fence and its gushing", None, 1, "RF-BLEED-001"),
    ("ive held a tea towel on it and the tea towel is already sodden", None, 1, "RF-BLEED-001"),
    ("I think she nicked an artery, there's blood spraying out of the cut", None, 1, "RF-BLEED-001"),
    ("there is bleeding from my hand and it just won't stop", None, 1, "RF-BLEED-001"),
    ("I've written letters to my kids and said my goodbyes", None, 1, "RF-MH-001"),
    ("I can't keep going like this anymore", None, 1, "RF-MH-001"),
    ("I'm sat on the edge of the cliff and I can't cope", None, 1, "RF-MH-004"),
    ("lately I think my family would be better off without me", None, 1, "RF-MH-003"),
    ("my dad takes insulin and he is hardly responding to us", OTHER, 1, "RF-DIAB-002"),
    ("she's type 1 diabetic and suddenly really confused", OTHER, 1, "RF-DIAB-002"),
    ("there's a heavy ache in my jaw and I'm clammy", None, 1, "RF-CARDIAC-005"),
    ("my left arm aches and I'm short of breath but my chest is fine", None, 1, "RF-CARDIAC-005"),
    ("an odd pressure in my jaw that runs down my arm", None, 2, "URG-CARDIAC-001"),
    ("I slipped and bumped my head, I'm on rivaroxaban", None, 2, "URG-HEADINJ-003"),
    ("he knocked his head on a shelf, he takes blood thinners", OTHER, 2, "URG-HEADINJ-003"),
    ("my son has terrible pain in one of his nuts", CHILD, 2, "URG-GU-005"),
    ("a shard of metal flew into my eye off the angle grinder", None, 2, "URG-EYE-005"),
    ("a stone from the strimmer hit me in the eye", None, 2, "URG-EYE-005"),
    ("I got poked in the eye and now my sight is blurry", None, 2, "URG-EYE-006"),
    ("pain by my belly button that has moved to the lower right and I've been sick", None, 2, "URG-ABDO-006"),
    ("my stomach hurts and it's agony every time I walk", None, 2, "URG-ABDO-007"),
    ("the redness has gone past the pen line the nurse drew", None, 3, "URG-SKIN-002"),
    ("I can barely open my mouth and my tonsils are killing me", None, 3, "URG-ENT-001"),
    ("I twisted my knee and it's swollen up like a grapefruit", None, 3, "URG-INJ-011"),
    ("I rolled my ankle and can only just hobble", None, 3, "URG-INJ-002"),
    ("my daughter has had a fever on and off for six days", CHILD, 3, "URG-FEVER-006"),
    ("there's a new mole on my shoulder that has started to itch", None, 4, "URG-SKIN-007"),
    ("I have to get up to wee three or four times a night", None, 4, "URG-GU-001"),
    ("i keep needing to we at night", None, 4, "URG-GU-001"),  # ASR: "wee" heard as "we"
    ("I've been feeling really down and tearful for weeks", None, 4, "URG-MH-001"),
    ("she had her jabs yesterday and is a bit grizzly", CHILD, 5, "URG-VACC-001"),
    ("it's like a tight band round my head after staring at the computer", None, 5, "URG-HEAD-006"),
]


@pytest.mark.parametrize(
    "text,ctx,level,rule", NEW_FAMILIES, ids=[f"{r}:{t[:30]}" for t, _c, _l, r in NEW_FAMILIES]
)
def test_new_rule_families(rs, text, ctx, level, rule):
    a = assess([text], context=ctx or PatientContext(), ruleset=rs)
    assert a.level == level, a.explanation()
    assert rule in a.rule_ids, a.explanation()
    if level == 1:
        assert a.escalate and a.next_question.kind == "emergency"


def test_new_rules_have_guidance_and_rationale(rs):
    new = ["RF-CARDIAC-005", "RF-MH-003", "RF-MH-004", "RF-DIAB-002", "URG-CARDIAC-001", "URG-HEADINJ-003",
           "URG-EYE-005", "URG-EYE-006", "URG-ABDO-006", "URG-ABDO-007", "URG-ENT-001", "URG-INJ-011",
           "URG-MH-002", "URG-SKIN-007", "URG-HEAD-006", "URG-VACC-001"]  # fmt: skip
    by_id = {r.id: r for r in rs.rules}
    for rid in new:
        r = by_id[rid]
        assert r.provenance and len(r.rationale) > 40 and r.version, rid


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("I hurt my arm lifting at the gym and feel a bit sick", 5),  # an injury explains the arm
        ("my waters have gone and it's gushing", 2),  # labour, not a haemorrhage
        ("I'm soaked through with sweat from this fever", 5),
        ("the paracetamol isn't helping my headache at all", 4),  # not eased: no self-care reading
        ("I got an eyelash stuck in my eye and it's sore", 3),  # a low-speed foreign body
        ("I sprained my ankle, it's a bit sore but I can walk on it fine", 5),
    ],
)
def test_new_rules_do_not_over_read(rs, text, level):
    a = assess([text], ruleset=rs)
    assert a.level == level, a.explanation()
