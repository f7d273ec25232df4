"""Assertion context: negation, someone else, history, hypothetical, uncertainty."""

import pytest

from clinical_rules import PatientContext, assess


def _excluded(a, concept):
    return [f for f in a.excluded if f.rule_id == f"concept:{concept}"]


@pytest.mark.parametrize(
    "text",
    [
        "no chest pain",
        "I don't have any chest pain",
        "there's no pain in my chest",
        "I haven't got chest pain, just a cold",
        "I'm not having chest pain",
    ],
)
def test_negated_chest_pain_does_not_fire(rs, text):
    a = assess([text], ruleset=rs)
    assert not any(f.rule_id.startswith(("RF-CARDIAC", "URG-CHEST")) for f in a.reasons), a.explanation()
    assert _excluded(a, "chest_pain")[0].assertion == "negated"


def test_explicit_denial_i_can_breathe_fine(rs):
    a = assess(["I can breathe fine, it's just a tickly cough"], ruleset=rs)
    assert a.level == 5 and not a.escalate
    assert _excluded(a, "breathing_difficulty")[0].assertion == "negated"


def test_negation_does_not_reach_past_a_new_clause(rs):
    # "no fever" must not negate the stiff neck, nor "hasn't had anything" the speech problem
    a = assess(["I don't have a fever but my neck is really stiff and I have a headache"], ruleset=rs)
    assert a.escalate and "RF-NEURO-003" in a.rule_ids
    b = assess(["he hasn't had anything to drink and his speech is off"], ruleset=rs)
    assert b.escalate and any(r.startswith("RF-STROKE") for r in b.rule_ids)


def test_negation_window_is_limited(rs):
    a = assess(
        ["no I was fine all weekend at my sisters place until this afternoon when my face started drooping"],
        ruleset=rs,
    )
    assert a.escalate


def test_family_history_is_not_the_patient(rs):
    a = assess(["my father had a stroke"], ruleset=rs)
    assert a.level is None and not a.escalate
    assert _excluded(a, "stroke_words")[0].assertion == "family"
    b = assess(["my mum died of a heart attack, I have a sore throat"], ruleset=rs)
    assert b.level == 5 and not b.escalate


def test_someone_else_happening_now_is_counted(rs):
    # a caller reporting for someone else now: that person is the patient
    a = assess(["my father is having a stroke"], ruleset=rs)
    assert a.escalate
    b = assess(["my husband collapsed and he's not breathing"], ruleset=rs)
    assert b.escalate and {f.assertion for f in b.reasons} == {"other_present"}
    c = assess(["my son had a fit ten minutes ago"], ruleset=rs)  # children are the patient
    assert c.escalate


def test_calling_about_someone_else_reads_past_tense_as_the_patient(rs):
    ctx = PatientContext(subject="other")
    a = assess(["my dad had a stroke"], context=ctx, ruleset=rs)
    assert a.escalate


def test_history_is_not_current(rs):
    a = assess(["I had a seizure years ago"], ruleset=rs)
    assert a.level is None and not a.escalate
    assert _excluded(a, "seizure")[0].assertion == "historical"
    b = assess(["I had a heart attack five years ago and now I have a cold"], ruleset=rs)
    assert b.level == 5


def test_hypothetical_is_not_current(rs):
    a = assess(["what should I do if I get chest pain"], ruleset=rs)
    assert a.level is None and not a.escalate
    assert _excluded(a, "chest_pain")[0].assertion == "hypothetical"
    # but a hypothetical question does not hide a real symptom said next
    b = assess(["what are the signs of a stroke my face is drooping"], ruleset=rs)
    assert b.escalate


def test_uncertain_counts_when_unsure_triage_up(rs):
    a = assess(["I think I might be having a heart attack"], ruleset=rs)
    assert a.escalate and a.reasons[0].assertion == "uncertain"
    b = assess(["I'm not sure but maybe my arm is weak"], ruleset=rs)
    assert b.escalate


def test_pseudo_negations_keep_the_symptom(rs):
    a = assess(["the bleeding won't stop"], ruleset=rs)
    assert a.escalate
    b = assess(["I took paracetamol but it didn't help the headache"], ruleset=rs)
    assert "URG-HEAD-001" in b.rule_ids
    c = assess(["I've never had a headache like this"], ruleset=rs)
    assert c.escalate


def test_explanation_names_rule_words_and_cue(rs):
    a = assess(["no chest pain but my face is drooping"], ruleset=rs)
    text = a.explanation()
    assert "RF-STROKE-001" in text and "face is drooping" in text
    assert "Chest pain" in text and "denied" in text and "'no'" in text
    d = a.to_dict()
    assert d["reasons"][0]["evidence_text"] == "face is drooping"
    assert d["reasons"][0]["provenance"] and d["reasons"][0]["rule_version"] == "1"
    start, end = d["reasons"][0]["start"], d["reasons"][0]["end"]
    assert "no chest pain but my face is drooping"[start:end] == "face is drooping"


def test_denied_spread_outranks_the_spread_words_inside_it(rs):
    # "go into my arm" lies inside "it doesn't go into my arm": the denial is the reading
    a = assess(["I've got chest pain but it doesn't go into my arm"], ruleset=rs)
    assert "RF-CARDIAC-001" not in a.rule_ids, a.explanation()
    assert _excluded(a, "arm_jaw_pain")[0].assertion == "negated"
    # a spread affirmed elsewhere in the same statement still fires
    b = assess(["it doesn't go into my arm but it's going into my jaw, chest pain"], ruleset=rs)
    assert b.escalate and "RF-CARDIAC-001" in b.rule_ids, b.explanation()


def test_passive_suicidal_thoughts_depend_on_a_stated_safety(rs):
    # passive thoughts alone stay an emergency; with no plan and a statement of safety, same day
    alone = assess(["sometimes I wish I wasn't here any more"], ruleset=rs)
    assert alone.level == 1 and alone.escalate and "RF-MH-003" in alone.rule_ids
    safe = assess(
        ["I've wished I wasn't here lately, but I've got no plans and I'm safe tonight"], ruleset=rs
    )
    assert safe.level == 3 and not safe.escalate and "URG-MH-002" in safe.rule_ids, safe.explanation()
    # active intent is never lowered by a safety statement
    active = assess(["I want to end my life, but I'm safe right now"], ruleset=rs)
    assert active.level == 1 and "RF-MH-001" in active.rule_ids


def test_never_waking_up_is_a_wish_not_unresponsiveness(rs):
    a = assess(["I'd like to go to sleep and never wake up, but I have no plan, I'm safe"], ruleset=rs)
    assert not {"RF-LOC-001", "RF-INFANT-002"} & set(a.rule_ids), a.explanation()
    assert a.level == 3


def test_denied_spread_of_redness(rs):
    # "not spreading" is an explicit denial, so the red-skin reading inside it is dropped
    a = assess(["a small red itchy spot from a midge bite, it isn't spreading"], ruleset=rs)
    assert "URG-SKIN-002" not in a.rule_ids and a.level == 5, a.explanation()
    assert _excluded(a, "spreading_redness")[0].assertion == "negated"
    b = assess(["the red area on my calf is hot and it is spreading"], ruleset=rs)
    assert "URG-SKIN-002" in b.rule_ids


def test_hypothetical_question_about_a_well_child_after_jabs(rs):
    a = assess(
        ["she had her eight week jabs today and seems fine, what do I do if she gets a fever?"],
        context=PatientContext(subject="child", age_band="3_months_to_2_years"),
        ruleset=rs,
    )
    assert a.level == 5 and _excluded(a, "fever")[0].assertion == "hypothetical", a.explanation()


def test_other_person_stroke_history_with_a_tension_headache(rs):
    a = assess(["my dad had a stroke years ago; I've a headache like a band across my forehead"], ruleset=rs)
    assert a.level == 5 and not a.escalate, a.explanation()
    assert "URG-HEAD-006" in a.rule_ids


def test_well_child_after_swallowing_a_battery_is_not_talked_down(rs):
    # "he seems fine", "no coughing" must not lower a battery ingestion: the danger is silent
    a = assess(["my boy swallowed a watch battery an hour ago, he seems fine, no coughing, no sick"],
               context=PatientContext(subject="child"), ruleset=rs)  # fmt: skip
    assert a.level == 1 and a.escalate and "RF-TOX-005" in a.rule_ids, a.explanation()


def test_denied_blister_keeps_a_small_burn_at_self_care(rs):
    a = assess(
        ["I touched the iron, it's a little pink mark about the size of a fingernail, no blister"], ruleset=rs
    )
    assert a.level == 5 and "URG-BURN-007" in a.rule_ids, a.explanation()
    b = assess(["I touched the iron, it's a little pink mark about the size of a fingernail and it blistered"],
               ruleset=rs)  # fmt: skip
    assert b.level == 3, b.explanation()


def test_denied_sunburn_warning_signs_keep_it_self_care(rs):
    a = assess(["my shoulders caught the sun, pink and tender but no blisters, no headache, not feeling sick"],
               ruleset=rs)  # fmt: skip
    assert a.level == 5, a.explanation()


def test_hypothetical_head_lice_question_is_self_care_not_unrecognised(rs):
    a = assess(["there are nits going round the nursery, what do I do if she catches them"],
               context=PatientContext(subject="child"), ruleset=rs)  # fmt: skip
    assert a.level == 5, a.explanation()


def test_tetanus_doubt_is_not_read_as_a_recent_vaccination(rs):
    a = assess(
        ["I caught my arm on barbed wire and I don't know if my tetanus jabs are up to date"], ruleset=rs
    )
    assert "URG-VACC-001" not in a.rule_ids and a.level == 3, a.explanation()


# 2026.11.4 (blind round 8): a denial of one word must not cancel a different red-flag feature.
@pytest.mark.parametrize(
    "text",
    [
        "it isn't chest pain as such, more like a heavy weight pressing on me, and I'm clammy",
        "not pain exactly, more of a crushing feeling since I was digging, I'm sweaty",
        "no chest pain really, it's more a squeezing pressure like a band round me and I feel sick",
    ],
)
def test_negated_chest_pain_does_not_cancel_other_cardiac_features(rs, text):
    a = assess([text], ruleset=rs)
    assert a.level == 1 and a.escalate, a.explanation()
    assert "RF-CARDIAC-006" in a.rule_ids


def test_safety_bug_cardiac_pressure_without_the_word_chest(rs):
    # round 8: pressure "like someone sitting on me" on exertion, clammy, diabetic, said with
    # "no chest pain as such" and offered as indigestion, went to self-care
    a = assess(
        [
            "there's no chest pain as such, it's more like someone's kneeling on me, started when I "
            "was pushing the car and it's not eased off with a sit down. I'm diabetic. Probably "
            "just heartburn?"
        ],
        ruleset=rs,
    )
    assert a.level == 1 and a.escalate, a.explanation()
    assert {"RF-CARDIAC-006"} <= set(a.rule_ids)


def test_negated_chest_pain_alone_still_excluded(rs):
    a = assess(["no chest pain as such, I just have a cough"], ruleset=rs)
    assert not any(r.startswith(("RF-CARDIAC", "URG-CHEST", "URG-CARDIAC")) for r in a.rule_ids)
    assert _excluded(a, "chest_pain")[0].assertion == "negated"


def test_gradual_change_over_the_last_year_is_not_history(rs):
    a = assess(["my mum has got more forgetful over the last year, she's well otherwise"], ruleset=rs)
    assert a.level is not None and a.level.value == 4, a.explanation()
    assert "URG-COG-001" in a.rule_ids
