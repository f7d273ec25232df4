"""Each red-flag family fires on lay wording, including ASR damage, and escalates."""

import pytest

from clinical_rules import PatientContext, UrgencyLevel, assess

CHILD = PatientContext(subject="child")

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
