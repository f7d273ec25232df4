"""Rules added for the CEDIS coverage round (2026.12.1), each tested on sibling wordings that are
not in the dev vignettes, so a rule is a pattern for the class, not for one sentence."""

import pytest

from clinical_rules import PatientContext, assess


def _a(rs, text, **ctx):
    return assess([text], context=PatientContext(**ctx), ruleset=rs)


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("it feels like something is ripping in my chest and going through to my back", "RF-VASC-001"),
        ("he's got a tearing pain in his back and he looks grey", "RF-VASC-001"),
        ("my grandad is 79, sudden agony in his tummy and back and he nearly passed out", "RF-VASC-002"),
        ("my calf has been swollen and tender for two days and now I can't catch my breath", "RF-VASC-003"),
        ("there's a pressure between my shoulder blades and I feel sick and clammy", "RF-CARDIAC-008"),
        ("my period's late, I've got shoulder tip pain and I keep feeling faint", "RF-PREG-020"),
        ("we found him in the garden this morning, he'd been out all night, he's drowsy", "RF-COLD-001"),
        ("she went under at swimming lessons and now she keeps coughing", "RF-WATER-001"),
        ("I touched a live wire and got an electric shock, my hand is tingling", "RF-ELEC-001"),
        ("he was electrocuted changing a light fitting", "RF-ELEC-001"),
        ("my brother keeps hearing voices and thinks the neighbours are spying on him", "RF-MH-005"),
        ("oven cleaner got on my hands and the skin is stinging", "RF-BURN-010"),
        ("I'm on apixaban and this headache is getting worse and worse", "RF-HEAD-010"),
        ("mum hasn't been for a poo in five days, her belly is bloated and she's vomiting", "RF-GI-010"),
        ("my 12 year old has pain in his groin and he's been sick twice", "RF-GU-010"),
    ],
)
def test_new_emergency_rules_catch_sibling_wordings(rs, text, rule_id):
    a = _a(rs, text)
    assert rule_id in a.rule_ids, a.rule_ids
    assert a.level is not None and a.level <= 2


@pytest.mark.parametrize(
    "text",
    [
        "my husband is threatening to stab me, he's waving a knife around",
        "the old man next door has no heating, he's icy cold to the touch and slurring his words",
    ],
)
def test_new_level_one_wordings(rs, text):
    a = _a(rs, text)
    assert a.level == 1 and a.escalate, a.rule_ids


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("I pulled a muscle in my chest at the gym, it hurts when I touch it", 4),
        ("my partner says I stop breathing in my sleep when I snore", 4),
        ("my daughter had one of her usual absences, she's fine now", 4),
        ("I had a static shock from the trampoline", 5),
        ("my poo went red after I had beetroot soup", 5),
        ("my teeth are sensitive to cold drinks", 5),
        ("I've got a little spot on my chin", 5),
        ("I'm shattered after a night out, nothing else wrong", 5),
        ("my toddler licked some toothpaste off the sink", 5),
    ],
)
def test_benign_look_alikes_are_not_over_triaged(rs, text, level):
    a = _a(rs, text)
    assert a.level == level, (a.level, a.rule_ids)


def test_lasting_state_is_not_history(rs):
    a = _a(rs, "I had a liver transplant two years ago and now I've got a temperature")
    assert "MOD-IMMUNO-001" in a.rule_ids
    # a finished treatment is history: no raise
    a = _a(rs, "I had chemo years ago, now I've got a temperature")
    assert "MOD-IMMUNO-001" not in a.rule_ids
