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
    # despair without a safety answer: RF-MH-003 since 2026.12.28 (with "no plan" it is level 3)
    ("I can't keep going like this anymore", None, 1, "RF-MH-003"),
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


# Rule families added in 2026.11.3 (gaps found by blind held-out round 7), in our own wording,
# with sibling presentations the round did not include.
CHILD_U2 = PatientContext(subject="child", age_band="3_months_to_2_years")
ROUND7_FAMILIES = [
    # (statement, context, expected level, rule that must fire)
    ("my tongue feels really thick since I ate those cashews", None, 1, "RF-ANAPH-001"),
    ("after the prawn curry my voice has gone croaky and my mouth is tingling", None, 1, "RF-ANAPH-005"),
    (
        "his lips have puffed right up and he's lumpy all over since the peanut butter",
        CHILD,
        1,
        "RF-ANAPH-006",
    ),
    ("we've all had bad heads and felt sick since the boiler was fitted", None, 2, "RF-TOX-004"),
    (
        "we ran the generator in the garage and now grandad is confused and me and the kids are dizzy",
        OTHER,
        1,
        "RF-TOX-003",
    ),
    (
        "she's been gardening in the blazing sun and now she's muddled and not sweating at all",
        OTHER,
        1,
        "RF-HEAT-002",
    ),
    ("he keeled over after an hour in the sauna", OTHER, 2, "RF-HEAT-003"),
    (
        "I'm about seven weeks pregnant, sharp pain low on my left and I nearly passed out",
        None,
        1,
        "RF-PREG-008",
    ),
    (
        "my period is a fortnight late and I've got pain down one side and I feel faint",
        None,
        1,
        "RF-PREG-010",
    ),
    ("I'm nine weeks pregnant and I've got an odd pain at the tip of my shoulder", None, 2, "RF-PREG-009"),
    ("I'm ten weeks pregnant and have a mild tummy ache", None, 3, "URG-PREG-003"),
    ("I think she swallowed a magnet off the fridge, she's playing happily", CHILD, 1, "RF-TOX-005"),
    ("my grandson swallowed an open safety pin", CHILD, 2, "RF-TOX-006"),
    ("a chicken bone is stuck in my throat", None, 2, "RF-TOX-006"),
    ("my toddler swallowed a marble but he's absolutely fine", CHILD, 3, "URG-TOX-001"),
    ("I mixed bleach and another cleaner and breathed in the fumes, now I'm coughing", None, 2, "RF-TOX-007"),
    ("some drain cleaner splashed up into my eye", None, 2, "URG-EYE-004"),
    ("wet cement went in his eye on the building site", OTHER, 2, "URG-EYE-004"),
    ("hot oil spat into my eye from the pan", None, 2, "URG-EYE-007"),
    ("my eyes have been gritty and streaming since I was welding yesterday", None, 3, "URG-EYE-008"),
    ("a bit of shampoo went in her eye at bath time", CHILD, 5, "URG-EYE-009"),
    ("my back's agony and I can't feel the toilet roll when I wipe", None, 2, "URG-BACK-003"),
    ("bad lower back pain and both my legs keep giving way", None, 2, "RF-BACK-001"),
    ("I have sickle cell anaemia and a temperature of 38.6", None, 2, "RF-HAEM-001"),
    (
        "my daughter has sickle cell and the pain in her arms is not touched by her usual painkillers",
        CHILD,
        2,
        "RF-HAEM-001",
    ),
    ("I've had an erection for five hours and it's really painful", None, 2, "URG-HAEM-002"),
    (
        "my 7 month old has a chesty cold and has gone off his milk, about half his usual",
        CHILD_U2,
        3,
        "URG-INFANT-001",
    ),
    ("shingles has come out on my eyelid", None, 3, "URG-SKIN-008"),
    (
        "a band of blisters has come up round one side of my ribs",
        None,
        3,
        "URG-SKIN-009",
    ),  # 3 since 2026.12.7
    ("I trod on a rusty nail in the shed", None, 3, "URG-WOUND-005"),
    ("I've cut my hand on a tin, I can't remember my last tetanus jab", None, 3, "URG-WOUND-004"),
    ("the gash on my knee is about three inches long and gapes when I bend it", None, 3, "URG-WOUND-003"),
    ("I've had thrush five times this year", None, 4, "URG-GYN-002"),
    ("I think I've got thrush again, the cream from the pharmacy didn't clear it", None, 4, "URG-GYN-002"),
    ("I found nits in my son's hair", CHILD, 5, "URG-MINOR-003"),
    ("I've got a verruca on the sole of my foot", None, 5, "URG-MINOR-003"),
    ("sunburnt on my back and now it's blistering and I've got the shivers", None, 3, "URG-BURN-005"),
    ("I didn't put sun cream on and my nose and cheeks are red and sore", None, 5, "URG-BURN-002"),
    (
        "I brushed my wrist on the hot baking tray, it's a little red mark the size of a 10p",
        None,
        5,
        "URG-BURN-007",
    ),
    ("I grabbed the pan handle and burnt my hand, there's a big blister", None, 3, "URG-BURN-008"),
]


@pytest.mark.parametrize(
    "text,ctx,level,rule", ROUND7_FAMILIES, ids=[f"{r}:{t[:30]}" for t, _c, _l, r in ROUND7_FAMILIES]
)
def test_round7_rule_families(rs, text, ctx, level, rule):
    a = assess([text], context=ctx or PatientContext(), ruleset=rs)
    assert a.level == level, a.explanation()
    assert rule in a.rule_ids, a.explanation()
    if level <= 2 and any(r.escalate for r in rs.rules if r.id == rule):
        assert a.escalate and a.next_question.kind == "emergency"


def test_round7_rules_have_guidance_and_rationale(rs):
    new = ["RF-ANAPH-005", "RF-ANAPH-006", "RF-TOX-003", "RF-TOX-004", "RF-TOX-005", "RF-TOX-006", "RF-TOX-007",
           "RF-HEAT-002", "RF-HEAT-003", "RF-PREG-008", "RF-PREG-009", "RF-PREG-010", "RF-HAEM-001", "RF-BACK-001",
           "URG-EYE-004", "URG-EYE-007", "URG-EYE-008", "URG-EYE-009", "URG-TOX-001", "URG-TOX-002", "URG-HAEM-001",
           "URG-HAEM-002", "URG-INFANT-001", "URG-INFANT-002", "URG-SKIN-008", "URG-SKIN-009", "URG-SKIN-010",
           "URG-WOUND-004", "URG-WOUND-005", "URG-GYN-001", "URG-GYN-002", "URG-GYN-003", "URG-MINOR-003",
           "URG-BURN-005", "URG-BURN-006", "URG-BURN-007", "URG-BURN-008", "URG-PREG-003", "URG-RESP-006",
           "URG-RESP-007", "URG-MSK-001"]  # fmt: skip
    by_id = {r.id: r for r in rs.rules}
    for rid in new:
        r = by_id[rid]
        assert r.provenance and len(r.rationale) > 40 and r.version, rid


def test_fumes_and_heat_scripts_give_first_aid_without_naming_a_condition(rs):
    co = assess(["the gas heater's on in the caravan and my wife won't wake up"], context=OTHER, ruleset=rs)
    assert co.level == 1 and co.escalate
    heat = assess(["he's been on the roof all day in the heatwave and now he's talking nonsense"], ruleset=rs)
    assert heat.level == 1 and heat.next_question.kind == "emergency"
    assert "cool" in rs.scripts["heat"].text and "fresh air" in rs.scripts["fumes"].text
    assert "20 minutes" in rs.scripts["eye_chemical"].text


@pytest.mark.parametrize(
    "text",
    [
        "I went to stroke the dog and he nipped me",
        "my daughter likes to stroke the cat",
        "I reached down to stroke her and she growled",
        "it was a stroke of luck that I wasn't hurt",
        "I swim breast stroke three times a week",
    ],
)
def test_stroke_as_a_verb_or_idiom_is_not_a_stroke(rs, text):
    a = assess([text], ruleset=rs)
    assert not any(r.startswith("RF-STROKE") for r in a.rule_ids), a.explanation()
    assert not (a.escalate and a.level == 1), a.explanation()


def test_stroke_as_a_noun_still_fires(rs):
    a = assess(["I think my dad is having a stroke, he was stroking the cat and just slumped"], ruleset=rs)
    assert "RF-STROKE-006" in a.rule_ids and a.level == 1


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("I've been on amoxicillin for tonsillitis and my voice is still croaky", 5),  # not an allergy
        ("my phone battery went down so I couldn't ring earlier, I've got a cough", 5),
        ("I ate chicken off the bone and then had a glass of wine, now I've got heartburn", 5),
        ("my skin is really dry in this heat and my eczema itches", 5),
        ("I think it's the early stages of a cold", 5),
        ("a tiny cold sore on my lip", 5),
        ("the boiler is broken so the house is freezing and I've got the sniffles", 5),
    ],
)
def test_round7_rules_do_not_over_read(rs, text, level):
    a = assess([text], ruleset=rs)
    assert a.level == level, a.explanation()


# Rule families added in 2026.11.4 (gaps found by blind held-out round 8), in our own wording,
# with sibling presentations the round did not include.
BABY_U3 = PatientContext(subject="child", age_band="under_3_months")
ELDERLY = PatientContext(subject="other", age_band="65_plus")
ROUND8_FAMILIES = [
    # (statement, context, expected level, rule that must fire)
    # overdose in lay amounts and named drugs, whatever the caller says about feeling well
    ("I've swallowed a whole strip of co-codamol but honestly I feel fine", None, 1, "RF-TOX-001"),
    ("she took a handful of her mirtazapine after the row", OTHER, 1, "RF-TOX-001"),
    ("he's necked the rest of his nurofen, about three packets", OTHER, 1, "RF-TOX-001"),
    ("I've been taking paracetamol every couple of hours since Sunday for my tooth", None, 1, "RF-TOX-001"),
    ("I think I injected double insulin by accident", None, 1, "RF-TOX-001"),
    # heart-attack pressure without the word chest
    ("a crushing weight on me since I carried the shopping upstairs", None, 1, "RF-CARDIAC-006"),
    ("like a lorry parked on top of me and I've gone all sweaty", None, 1, "RF-CARDIAC-006"),
    ("it feels like somebody is stood on me", None, 2, "URG-CARDIAC-002"),
    ("chest pain since this morning and sitting down hasn't helped", None, 1, "RF-CARDIAC-001"),
    # gut bleeding with faintness or shock
    ("I brought up a load of blood and my legs nearly went from under me", None, 1, "RF-BLEED-006"),
    ("my poo's gone black like tar and I'm pale and clammy", None, 1, "RF-BLEED-006"),
    ("bright red blood in my poo and I feel lightheaded", None, 2, "RF-BLEED-007"),
    # young babies: blue spells, grunting, pallor
    ("he stopped breathing for a few seconds and his lips went dusky", BABY_U3, 1, "RF-BREATH-005"),
    ("my newborn is breathing with a grunt each breath", BABY_U3, 1, "RF-INFANT-005"),
    ("she's three weeks old and she's gone really pale", BABY_U3, 1, "RF-INFANT-004"),
    # infection with high-risk signs, including ASR damage
    (
        "nan's on antibiotics for a chest infection and now she's confused and breathing fast",
        ELDERLY,
        1,
        "RF-SEPSIS-006",
    ),
    ("he's got a urine in fiction and his knees are all model", ELDERLY, 1, "RF-SEPSIS-005"),
    ("grandad has cellulitis and has not passed urine all day", ELDERLY, 1, "RF-SEPSIS-005"),
    # later pregnancy: abruption
    ("I'm 29 weeks pregnant, bleeding and a constant pain in my tummy", None, 1, "RF-PREG-011"),
    ("38 weeks pregnant and my bump has gone hard and it won't relax", None, 1, "RF-PREG-012"),
    ("I'm 33 weeks and the blood is running down my legs", None, 1, "RF-PREG-001"),
    # dehydration after diarrhoea and vomiting
    ("tummy bug for two days, I'm hardly weeing and I go woozy when I get up", None, 3, "URG-GI-009"),
    ("sickness and diarrhoea, every sip of water comes straight back up", None, 3, "URG-GI-005"),
    # asthma: moderate flare vs acute severe
    (
        "my asthma is bad with this cold, using my reliever every four hours, I can speak fine",
        None,
        3,
        "URG-ASTHMA-001",
    ),
    ("peak flow is less than half of my best and I'm wheezing", None, 2, "RF-BREATH-006"),
    ("I'm needing the ventolin every half hour", None, 2, "URG-ASTHMA-003"),
    # routine: memory, heavy periods, abnormal bleeding
    (
        "dad is 83 and keeps asking the same questions over and over, otherwise he is well",
        ELDERLY,
        4,
        "URG-COG-001",
    ),
    ("my mum's been getting more confused over the past few years", ELDERLY, 4, "URG-COG-001"),
    ("my periods have got heavier, I'm flooding at night and shattered", None, 4, "URG-GYN-004"),
    ("some spotting after sex a few times this month", None, 4, "URG-GU-006"),
]


@pytest.mark.parametrize(
    "text,ctx,level,rule", ROUND8_FAMILIES, ids=[f"{r}:{t[:30]}" for t, _c, _l, r in ROUND8_FAMILIES]
)
def test_round8_families(rs, text, ctx, level, rule):
    a = assess([text], context=ctx, ruleset=rs) if ctx else assess([text], ruleset=rs)
    assert rule in a.rule_ids, a.explanation()
    assert a.level == level, a.explanation()
    if level == 1:
        assert a.escalate


def test_safety_bug_overdose_in_lay_words_reaches_level_1(rs):
    # round 8: a large paracetamol (plus antidepressant) overdose in lay amounts got no level
    for text in [
        "I took a load of paracetamol earlier, maybe two boxes, and a few of my citalopram, I feel ok",
        "swallowed all my co-codamol about an hour ago, I'm on my own",
        "I've had two packets of paracetamol today on top of each other",
    ]:
        a = assess([text], ruleset=rs)
        assert a.level == 1 and a.escalate, a.explanation()
        assert "RF-TOX-001" in a.rule_ids


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("testicle pain on one side since this morning, he's been sick and looks white as a ghost", 2),
        ("my son is 15, sore balls and he's pale, no fever", 2),
    ],
)
def test_pallor_alone_is_not_a_sepsis_sign(rs, text, level):
    a = assess([text], context=PatientContext(subject="child", age_band="12_to_17"), ruleset=rs)
    assert a.level == level, a.explanation()
    assert not any(r.startswith("RF-SEPSIS") for r in a.rule_ids), a.explanation()


def test_passive_thoughts_with_a_clear_no_intent_statement_are_not_sent_to_ed(rs):
    a = assess(
        [
            "I've been so low lately and not sleeping, sometimes I think they'd all be better off "
            "without me, but I'd never do that to my kids, I just don't know where to turn"
        ],
        ruleset=rs,
    )
    assert a.level == 3, a.explanation()
    assert "URG-MH-002" in a.rule_ids and "RF-NEURO-002" not in a.rule_ids


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("I took two paracetamol for my headache and it's a bit better", 4),  # a normal dose
        ("how many ibuprofen can I take for a cold", 5),
        ("I feel a heavy pressure in my head from my sinuses with this cold", 5),  # not cardiac
        ("my hair's gone grey with all the stress", 4),  # not a skin colour
        ("I'm a bit confused about which dose of calpol to give him for his cold", 5),
        ("I'm 34 weeks and my bump goes hard now and then but it doesn't hurt", None),  # tightenings
        ("I've been sick once with some blood in it, not dizzy, feel ok otherwise", 2),
        ("I've had the runs since last night but I'm drinking fine", 5),
        ("I've got a water infection and now I can't pee at all", 2),  # retention, not sepsis
    ],
)
def test_round8_rules_do_not_over_read(rs, text, level):
    a = assess([text], ruleset=rs)
    got = a.level.value if a.level is not None else None
    assert got == level, a.explanation()


# 2026.11.5 (round 9): a severe asthma attack and a head injury with a falling level of
# consciousness, told in the caller's own words, are ambulance calls.
@pytest.mark.parametrize(
    "text",
    [
        "my asthma's bad, had about eight puffs of the ventolin and it's done nothing",
        "he's asthmatic, he's wheezing and can only say one or two words at a time",
        "I can't finish a sentence, the blue inhaler is making no difference",
    ],
)
def test_severe_asthma_in_lay_words_is_level_1(rs, text):
    a = assess([text], ruleset=rs)
    assert a.level == UrgencyLevel.CALL_EMERGENCY_SERVICES, a.explanation()
    assert any(r.startswith("RF-BREATH") for r in a.rule_ids)


def test_head_injury_with_reduced_consciousness_is_level_1(rs):
    ctx = PatientContext(subject="other", age_band="65_plus")
    text = "grandad slipped and hit his head on the step, his eyes are rolling and he's not answering us properly"
    a = assess([text], context=ctx, ruleset=rs)
    assert a.level == UrgencyLevel.CALL_EMERGENCY_SERVICES, a.explanation()
    assert "RF-TRAUMA-004" in a.rule_ids


@pytest.mark.parametrize(
    ("text", "level", "rule"),
    [
        (
            "my right eye is throbbing and bloodshot and there are halos round the street lights",
            2,
            "URG-EYE-010",
        ),
        (
            "I've noticed a lump in my groin that's been there for a few weeks, it doesn't hurt",
            4,
            "URG-LUMP-001",
        ),
        ("back's been aching for two months, no numbness, bladder and bowels are normal", 4, "URG-BACK-001"),
        ("I'm on perindopril and have a dry tickly cough, not breathless", 4, "URG-MED-002"),
        (
            "acid reflux after a big dinner, gaviscon helps, no chest pain and I'm not short of breath",
            5,
            "URG-GI-010",
        ),
    ],
)
def test_round9_routine_and_urgent_families(rs, text, level, rule):
    a = assess([text], ruleset=rs)
    assert a.level is not None and a.level.value == level, a.explanation()
    assert rule in a.rule_ids


def test_bedwetting_in_a_well_child_is_not_cauda_equina(rs):
    a = assess(
        ["my boy is seven and has started wetting the bed again, he's fine otherwise"],
        context=CHILD,
        ruleset=rs,
    )
    assert a.level is not None and a.level.value == 4, a.explanation()
    assert "URG-BACK-003" not in a.rule_ids


# 2026.11.6 (held-out round 10): a child's scald without size words, the "hit by a bus" idiom,
# someone else's settled condition, and common calls that had no level.
@pytest.mark.parametrize(
    "text,level,rule",
    [
        (
            "my son's three, he knocked a cup of hot coffee all over his chest and it's come up in blisters",
            2,
            "URG-BURN-011",
        ),
        ("toddler grabbed my tea and it went down her arm, the skin's blistering", 2, "URG-BURN-010"),
        (
            "boiling water from the kettle went all down my arm and it's a big blistered patch",
            2,
            "URG-BURN-011",
        ),
        (
            "i'm feeding him myself, my boob is red and hot with a hard wedge and i feel shivery and fluey",
            3,
            "URG-BREAST-002",
        ),
        (
            "my mum's taken her blood pressure tablets twice today by accident, she feels fine",
            3,
            "URG-MED-003",
        ),
        ("the steroid cream isn't doing anything for my eczema any more", 4, "URG-SKIN-014"),
    ],
)
def test_round10_families(rs, text, level, rule):
    a = assess([text], ruleset=rs)
    assert a.level is not None and a.level.value == level, a.explanation()
    assert rule in a.rule_ids


@pytest.mark.parametrize(
    "text",
    [
        "I ache all over, I feel like I've been hit by a bus, it's just a stinking cold",
        "honestly I feel like I've been run over by a steamroller with this sore throat",
    ],
)
def test_hit_by_a_bus_idiom_is_not_major_trauma(rs, text):
    a = assess([text], ruleset=rs)
    assert "RF-TRAUMA-001" not in a.rule_ids, a.explanation()
    assert a.level is not None and a.level.value >= 4, a.explanation()


def test_real_road_collision_is_still_major_trauma(rs):
    a = assess(["my son's been hit by a car outside school"], ruleset=rs)
    assert a.level is not None and a.level.value == 1, a.explanation()
    assert "RF-TRAUMA-001" in a.rule_ids


def test_another_persons_symptom_said_to_be_fine_is_not_denied(rs):
    # "he's fine" is deliberately not a denial cue: it would clear "my dad's got chest pain,
    # he's fine". The price is over-triage of a settled relative's angina (docs: clinical review).
    a = assess(["my dad's got chest pain, he's fine"], ruleset=rs)
    assert a.level is not None and a.level.value <= 2, a.explanation()
    b = assess(
        ["my wife has angina, she's fine, I'm ringing about a bee sting, a bit swollen round it"], ruleset=rs
    )
    assert b.level is not None and b.level.value <= 2, b.explanation()  # over-triaged, never under


def test_someone_elses_chest_pain_said_fine_otherwise_still_counts(rs):
    a = assess(["my husband's got chest pain, he's fine otherwise"], ruleset=rs)
    assert a.level is not None and a.level.value <= 2, a.explanation()
