"""The triage interview, turn by turn, as the voice pipeline drives it."""

from clinical_rules import PatientContext, TriageInterview, UrgencyLevel


def _talk(iv, *turns):
    """Caller says each turn (final transcript), agent answers with next_prompt."""
    prompts = []
    for t in turns:
        iv.observe_partial(t[: len(t) // 2])
        iv.observe_final(t)
        prompts.append(iv.next_prompt())
    return prompts


def test_opening_is_a_fixed_greeting(rs):
    iv = TriageInterview(ruleset=rs)
    p = iv.opening()
    assert p.kind == "greeting" and p.fixed and "911" in p.text
    assert iv.assessment.level is None and not iv.escalated and not iv.finished
    assert iv.next_prompt().kind == "greeting"  # nothing said yet


def test_chest_pain_without_cardiac_features_is_cleared_to_urgent_care(rs):
    iv = TriageInterview(context=PatientContext(age_band="18_to_64"), ruleset=rs)
    prompts = _talk(iv, "I've got some chest pain")
    assert prompts[0].kind == "question" and prompts[0].question_id == "chest.pressure"
    assert iv.assessment.level == UrgencyLevel.EMERGENCY_DEPARTMENT_NOW
    prompts = _talk(iv, "no", "no it doesn't", "no I'm not", "no")
    assert [p.question_id for p in prompts[:3]] == ["chest.radiation", "chest.breathless", "chest.sweating"]
    assert iv.assessment.level == UrgencyLevel.URGENT_CARE_HOURS  # lowered only by these answers
    cleared = [f for f in iv.assessment.reasons if f.rule_id == "URG-CHEST-001"][0]
    assert "denied" in cleared.explanation
    prompts = _talk(iv, "since about lunchtime maybe two hours")
    assert prompts[-1].kind == "disposition" and prompts[-1].fixed and iv.finished
    assert iv.next_prompt().kind == "closing"


def test_chest_pain_yes_to_screen_escalates_with_fixed_script(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "my chest hurts")
    prompts = _talk(iv, "yes it's like a weight pressing on it")
    assert prompts[-1].kind == "emergency" and prompts[-1].fixed
    assert "911" in prompts[-1].text and iv.escalated and iv.finished
    assert iv.assessment.level == UrgencyLevel.CALL_EMERGENCY_SERVICES
    assert "RF-CARDIAC-002" in prompts[-1].rule_ids
    # the script is repeated, never replaced by more questions
    assert iv.next_prompt() == prompts[-1]


def test_headache_interview_to_self_care(rs):
    iv = TriageInterview(context=PatientContext(age_band="18_to_64", pregnant=False), ruleset=rs)
    first = _talk(iv, "I've had a headache since this morning")[0]
    assert first.question_id == "head.sudden"
    assert iv.assessment.level == UrgencyLevel.PRIMARY_CARE_DAYS
    prompts = _talk(iv, "no", "no", "no", "nope", "about a three")
    assert iv.assessment.level == UrgencyLevel.SELF_CARE
    assert prompts[-1].kind == "disposition" and "home" in prompts[-1].text


def test_infant_fever_asks_age_first_then_escalates(rs):
    iv = TriageInterview(context=PatientContext(subject="child"), ruleset=rs)
    p = _talk(iv, "my baby has a temperature")[0]
    assert p.question_id == "general.age" and not iv.escalated
    assert iv.assessment.level == UrgencyLevel.EMERGENCY_DEPARTMENT_NOW  # provisional, conservative
    p = _talk(iv, "she's seven weeks old")[0]
    assert p.kind == "emergency" and iv.escalated
    assert iv.assessment.facts["age_band"] == "under_3_months"


def test_infant_fever_older_baby_goes_down_by_the_age_answer(rs):
    iv = TriageInterview(context=PatientContext(subject="child"), ruleset=rs)
    _talk(iv, "my baby has a temperature")
    _talk(iv, "he's nine months")
    assert iv.assessment.level == UrgencyLevel.PRIMARY_CARE_DAYS and not iv.escalated


def test_unclear_answer_gets_one_clarify_then_counts_as_unsure(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "I've got a bad headache")
    p = _talk(iv, "the weather is terrible today")[0]
    assert p.kind == "clarify" and p.question_id == "head.sudden"
    assert "yes, no, or not sure" in p.text
    p = _talk(iv, "hmm I really couldn't say")[0]
    # twice without a usable answer: counted as "not sure" -> the red flag is triaged up
    assert iv.escalated and p.kind == "emergency"


def test_answer_with_new_red_flag_escalates(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "I feel dizzy")
    p = _talk(iv, "no chest pain but now my face feels numb on one side")[0]
    assert p.kind == "emergency" and any(r.startswith("RF-STROKE") for r in iv.assessment.rule_ids)


def test_questions_already_answered_in_speech_are_skipped(rs):
    iv = TriageInterview(ruleset=rs)
    p = _talk(iv, "chest pain since this morning, no sweating, it doesn't spread anywhere")[0]
    assert p.question_id == "chest.pressure"
    asked = [p.question_id for p in _talk(iv, "no", "no")]
    assert "chest.sweating" not in asked and "chest.radiation" not in asked and "general.onset" not in asked


def test_unrecognised_caller_is_asked_then_triaged_up(rs):
    iv = TriageInterview(ruleset=rs)
    p1 = _talk(iv, "asdf qwerty zxcv")[0]
    p2 = _talk(iv, "blorp")[0]
    assert p1.kind == p2.kind == "clarify"
    p3 = _talk(iv, "glarb fnord")[0]
    assert p3.kind == "disposition" and p3.fixed and iv.finished
    assert iv.assessment.level == UrgencyLevel.URGENT_CARE_HOURS
    assert "SYS-UNRECOGNISED" in iv.assessment.rule_ids


def test_suicidal_caller_gets_crisis_script(rs):
    iv = TriageInterview(ruleset=rs)
    p = _talk(iv, "I don't want to be alive anymore")[0]
    assert p.kind == "emergency" and "988" in p.text and "911" in p.text


def test_prompts_and_assessments_are_json_ready(rs):
    import json

    iv = TriageInterview(ruleset=rs)
    _talk(iv, "I cut my hand and it won't stop bleeding")
    json.dumps(iv.assessment.to_dict())
    assert iv.assessment.to_dict()["ruleset_version"] == rs.version


# ---------------------------------------------------------------- never only "please rephrase" (issue 11 part 3)
SCREEN = ["general.breathing", "general.chest_pain", "screen.conscious", "screen.bleeding", "screen.pain"]


def test_unplaced_statement_gets_the_universal_screen_not_rephrase(rs):
    iv = TriageInterview(ruleset=rs)
    p = _talk(iv, "I just don't feel right today, something is off")[0]
    assert p.kind == "question" and p.question_id == SCREEN[0]
    asked = [p.question_id] + [q.question_id for q in _talk(iv, "no", "no", "no", "no")]
    assert asked == SCREEN
    p = _talk(iv, "no")[0]  # all denied: a level, then one request to say it in other words
    assert p.kind == "clarify" and p.fixed and p.text == rs.texts["rephrase"]
    assert iv.assessment.level == UrgencyLevel.PRIMARY_CARE_DAYS
    f = [r for r in iv.assessment.reasons if r.rule_id == "SYS-SCREEN-NEGATIVE"][0]
    assert "screen" in f.explanation and f.provenance
    # still nothing placed: the call ends with that level, never without one
    prompts = _talk(iv, "I don't know really", "no idea", "a few days", "35", "maybe a two")
    assert iv.finished and prompts[-1].kind in ("disposition", "closing")
    assert iv.assessment.level == UrgencyLevel.PRIMARY_CARE_DAYS


def test_screen_yes_fires_the_red_flag(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "my husband is not himself at all")
    p = _talk(iv, "no", "no", "yes he's very drowsy and hard to wake")[-1]
    assert iv.assessment.level is not None and iv.assessment.level <= UrgencyLevel.EMERGENCY_DEPARTMENT_NOW
    assert p.kind in ("question", "emergency", "disposition")


def test_screen_bleeding_yes_escalates(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "something has happened to my neighbour")
    p = _talk(iv, "no", "no", "no", "yes there's blood everywhere")[-1]
    assert p.kind == "emergency" and iv.escalated


def test_rephrased_complaint_after_negative_screen_replaces_the_screen_level(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "I'm not sure how to explain it")
    _talk(iv, "no", "no", "no", "no", "no")
    assert iv.assessment.level == UrgencyLevel.PRIMARY_CARE_DAYS
    _talk(iv, "oh it's just a runny nose and sneezing since yesterday")
    assert iv.assessment.level == UrgencyLevel.SELF_CARE
    assert "SYS-SCREEN-NEGATIVE" not in iv.assessment.rule_ids


def test_stateless_assess_offers_the_screen_for_understood_unplaced_words(rs):
    from clinical_rules import assess

    a = assess(["I just don't feel right today"], ruleset=rs)
    assert a.level is None and a.next_question.kind == "question"
    assert a.next_question.question_id == SCREEN[0]


def test_off_topic_answer_is_asked_again_plainly_and_not_counted_as_unsure(rs):
    iv = TriageInterview(ruleset=rs)
    p = _talk(iv, "I've got a bad headache")[0]
    assert p.question_id == "head.sudden"
    # talks about something else: kept as information, the question is asked again plainly
    p = _talk(iv, "I've been feeling sick too")[0]
    assert p.kind == "clarify" and p.question_id == "head.sudden" and "yes, no, or not sure" in p.text
    assert not iv.escalated
    p = _talk(iv, "no it built up slowly")[0]
    assert not iv.escalated and p.question_id != "head.sudden"


def test_two_off_topic_answers_do_not_escalate_when_the_second_is_answered(rs):
    iv = TriageInterview(ruleset=rs)
    _talk(iv, "I've got a bad headache")
    _talk(iv, "my back aches as well")  # about something else
    _talk(iv, "the weather is terrible today")  # not an answer: one clarify used
    assert not iv.escalated
    _talk(iv, "no")
    assert not iv.escalated
