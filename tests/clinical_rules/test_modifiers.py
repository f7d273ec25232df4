"""High-risk modifiers (rulesets/default/modifiers.yaml), one by one.

Each test states the same complaint without and with the risk factor: the modifier must raise
the level (and say so in the explanation), and never lower it.
"""

import pytest

from clinical_rules import PatientContext, assess


def _level(rs, text, **ctx):
    a = assess([text], context=PatientContext(**ctx), ruleset=rs)
    return a


def _mod(a, rule_id):
    hits = [f for f in a.reasons if f.rule_id == rule_id]
    assert hits, (rule_id, a.rule_ids)
    return hits[0]


@pytest.mark.parametrize(
    ("base", "risky", "rule_id"),
    [
        # age over 75: an explicit age in years
        ("I've had diarrhoea since yesterday", "I'm 81 and I've had diarrhoea since yesterday", "MOD-AGE-001"),
        ("my mum has a cough for a couple of weeks", "my mum is 78 and she has a cough for a couple of weeks",
         "MOD-AGE-001"),
        ("I've had diarrhoea since yesterday", "my dad is very frail and he's had diarrhoea since yesterday",
         "MOD-AGE-002"),
        # pregnancy
        # (a headache in pregnancy has its own rule, URG-HEAD-005, graded with the pregnancy: the
        # modifier does not count it twice; test_modifier_does_not_count_a_graded_risk_twice)
        ("I feel really dizzy", "I'm pregnant and I feel really dizzy", "MOD-PREG-001"),
        # weakened immune system
        ("I've had diarrhoea since yesterday", "I'm on chemo and I've had diarrhoea since yesterday",
         "MOD-IMMUNO-003"),
        ("I've had a cough for a few days", "I'm on chemo and I've had a cough for a few days", "MOD-IMMUNO-002"),
        ("I've got a sore throat", "I had a kidney transplant and I've got a sore throat", "MOD-IMMUNO-002"),
        # blood thinners
        ("I cut my finger chopping onions it's a small cut",
         "I'm on warfarin and I cut my finger chopping onions it's a small cut", "MOD-ANTICOAG-001"),
        # diabetes
        ("I've been sick a couple of times today", "I'm diabetic and I've been sick a couple of times today",
         "MOD-DIAB-002"),
        # recent operation
        ("I've had diarrhoea since yesterday", "I had my gallbladder out last week and I've had diarrhoea since yesterday",
         "MOD-SURG-002"),
        # sickle cell disease
        ("I've got a sore throat", "I have sickle cell and I've got a sore throat", "MOD-SICKLE-001"),
        # the caller's own words
        # (toothache, however severe, stays with the urgent dentist since 2026.12.28: test_round36_classes)
        ("I've got earache", "I've got earache it's the worst pain I've ever had", "MOD-WORST-001"),
        ("I feel really dizzy", "I feel so dizzy I can't stand up", "MOD-STAND-001"),
    ],
)  # fmt: skip
def test_raise_modifier_makes_the_complaint_more_urgent(rs, base, risky, rule_id):
    a0 = _level(rs, base)
    a1 = _level(rs, risky)
    assert a0.level is not None and a1.level is not None
    assert a1.level < a0.level, (a0.rule_ids, a1.rule_ids)
    f = _mod(a1, rule_id)
    assert f.level == a1.level and f.level >= 2 and not f.escalate  # a raise never reaches 911 alone
    rule = next(r for r in rs.rules if r.id == rule_id)
    assert ("Raised from level" in f.explanation) == (rule.raise_by is not None) and f.provenance
    assert rule_id in a1.explanation()


def test_modifier_does_not_count_a_graded_risk_twice(rs):
    # URG-HEAD-005 sends a headache in pregnancy to level 3 because of the pregnancy; the pregnancy
    # modifier must not raise that again. Pregnancy with a second reason (a fever) still raises.
    a = _level(rs, "I'm pregnant and I've had a headache since this morning")
    assert a.level == 3 and "MOD-PREG-001" not in a.rule_ids, a.rule_ids
    a = _level(rs, "I'm 24 weeks pregnant and it stings when I wee, no fever")
    assert a.level == 3 and "MOD-PREG-001" not in a.rule_ids, a.rule_ids
    a = _level(rs, "I'm 24 weeks pregnant, it stings when I wee and I've got a fever of 38.5")
    assert a.level == 2 and "MOD-PREG-001" in a.rule_ids, a.rule_ids


def test_infant_under_three_months_raises_any_illness(rs):
    a0 = _level(rs, "she's been vomiting after her feeds", subject="child", age_band="3_months_to_2_years")
    a1 = _level(rs, "she's been vomiting after her feeds", subject="child", age_band="under_3_months")
    assert a1.level < a0.level
    _mod(a1, "MOD-AGE-003")


@pytest.mark.parametrize(
    ("text", "rule_id", "level"),
    [
        ("I'm on chemotherapy and I've got a temperature of 38", "MOD-IMMUNO-001", 2),
        ("I'm having chemo and I feel shivery and fluey", "MOD-IMMUNO-001", 2),
        ("I'm on dialysis and I've been really short of breath today", "MOD-DIAL-001", 2),
        ("my kidneys have failed and my heart keeps fluttering", "MOD-DIAL-001", 2),
        ("I missed my dialysis session yesterday", "MOD-DIAL-002", 3),
        ("my son is type 1 diabetic and he can't keep any fluids down", "MOD-DIAB-001", 2),
        ("I had a hip replacement two weeks ago and now my calf is swollen and painful", "MOD-SURG-001", 2),
        ("I gave birth ten days ago and I've got a terrible headache", "MOD-POSTPART-001", 2),
        ("I had a baby last week and I've got a fever and I feel shivery", "MOD-POSTPART-003", 2),
        ("I had a baby last week and I've got a bad headache and blurry vision", "MOD-POSTPART-001", 2),
        ("I was thrown off my motorbike on the motorway but I feel okay", "MOD-MECH-001", 2),
        ("our car rolled over on the way home, we all got out", "MOD-MECH-001", 2),
    ],
)  # fmt: skip
def test_floor_modifiers(rs, text, rule_id, level):
    a = _level(rs, text)
    f = _mod(a, rule_id)
    assert f.level == level and a.level is not None and a.level <= level
    assert f.provenance and f.explanation


def test_postpartum_heavy_bleeding_is_an_emergency(rs):
    a = _level(rs, "I had my baby two weeks ago and now I'm bleeding heavily, soaking pads")
    assert a.escalate and a.level == 1


@pytest.mark.parametrize(
    "text",
    [
        "I'm 81 and I think I'm having a heart attack, crushing pain in my chest",
        "I'm on warfarin and I cut my leg and it won't stop bleeding",
    ],
)
def test_modifier_never_lowers_an_emergency(rs, text):
    a = _level(rs, text)
    assert a.level == 1 and a.escalate
    assert all(f.level >= 1 for f in a.reasons)


def test_modifier_needs_a_complaint(rs):
    # a risk factor alone is not a complaint: nothing is raised from nothing
    a = _level(rs, "I'm 80 and I'm on warfarin")
    assert not [f for f in a.reasons if f.rule_id.startswith("MOD-")]


def test_risk_factor_denied_or_in_the_past_does_not_raise(rs):
    a = _level(rs, "I'm not diabetic, I've been sick a couple of times today")
    assert "MOD-DIAB-002" not in a.rule_ids
    a = _level(rs, "I had chemo years ago, now I've just got diarrhoea since yesterday")
    assert "MOD-IMMUNO-002" not in a.rule_ids


def test_modifiers_do_not_stack(rs):
    a = _level(rs, "I'm 82, I'm on chemo and I have sickle cell and I've had a cough for a few days")
    base = _level(rs, "I've had a cough for a few days")
    assert len([f for f in a.reasons if f.rule_id.startswith("MOD-")]) >= 2
    assert a.level == base.level - 1


def test_loader_rejects_an_escalating_raise_modifier(tmp_path):
    import shutil

    from clinical_rules import RuleSetError, load_ruleset
    from clinical_rules.loader import DEFAULT_PATH

    d = tmp_path / "rs"
    shutil.copytree(DEFAULT_PATH, d)
    p = d / "modifiers.yaml"
    p.write_text(
        p.read_text().replace("    level: 2\n    raise_by: 1\n", "    level: 1\n    raise_by: 1\n", 1)
    )
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(d)
    assert any("raise_by" in m for _f, _l, m in exc.value.errors)
