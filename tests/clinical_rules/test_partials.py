"""Incremental partial transcripts: findings follow the words, retraction and latching policy."""

from clinical_rules import TriageInterview


def test_red_flag_appears_as_words_arrive(rs):
    iv = TriageInterview(ruleset=rs)
    assert iv.observe_partial("my").level is None
    assert not iv.observe_partial("my face is").escalate
    a = iv.observe_partial("my face is drooping")
    assert a.escalate and a.on_partial and "RF-STROKE-001" in a.rule_ids


def test_negation_arriving_later_in_the_partial_retracts(rs):
    iv = TriageInterview(ruleset=rs)
    a = iv.observe_partial("chest pain")
    assert a.level == 2
    b = iv.observe_partial("no chest pain")  # ASR revised the start of the utterance
    assert b.level is None


def test_partial_only_escalation_is_withdrawn_visibly(rs):
    iv = TriageInterview(ruleset=rs)
    a = iv.observe_partial("I had a seizure")
    assert a.escalate
    b = iv.observe_partial("I had a seizure years ago")
    assert not b.escalate
    assert [f.rule_id for f in b.withdrawn] == ["RF-SEIZ-001"]  # reported, never silent
    assert not iv.escalated
    final = iv.observe_final("I had a seizure years ago but today I have a sore throat")
    assert not final.escalate and final.level == 5


def test_escalation_latches_once_final(rs):
    iv = TriageInterview(ruleset=rs)
    iv.observe_final("my face is drooping")
    assert iv.escalated
    # a later utterance that denies it does not remove the committed red flag
    a = iv.observe_final("no actually my face is fine")
    assert a.escalate and "RF-STROKE-001" in a.rule_ids
    b = iv.observe_partial("sorry I mean")
    assert b.escalate


def test_escalation_latches_once_the_script_is_spoken(rs):
    iv = TriageInterview(ruleset=rs)
    iv.observe_partial("he's not breathing")
    prompt = iv.next_prompt()
    assert prompt.kind == "emergency" and prompt.fixed
    a = iv.observe_partial("he's not breathing oh wait he's breathing now")
    assert a.escalate  # the script was spoken: it never silently disappears
    assert iv.next_prompt() == prompt and iv.finished


def test_partials_replace_not_accumulate(rs):
    iv = TriageInterview(ruleset=rs)
    iv.observe_final("I have a sore throat")
    a = iv.observe_partial("and a headache")
    assert {"URG-RESP-001", "URG-HEAD-001"} <= set(a.rule_ids)
    b = iv.observe_partial("and a runny nose")
    assert "URG-HEAD-001" not in b.rule_ids and "URG-RESP-001" in b.rule_ids


def test_urgency_does_not_drop_between_finals_without_answers(rs):
    iv = TriageInterview(ruleset=rs)
    iv.observe_final("my 70 year old dad hit his head")
    assert iv.assessment.level == 2
    # a later correction of the age is not one of the answers the rules define
    a = iv.observe_final("actually he's 60")
    assert a.level == 2
