"""Whole-interview evaluation: the simulated caller's answers are understood by the real interview,
the facts file is sound, and every dev vignette played as a whole call ends with a level and
loses no emergency on the final disposition."""

from __future__ import annotations

import pytest

from clinical_rules import PatientContext, Prompt, load_ruleset
from clinical_rules.answers import parse_answer
from clinical_rules.engine import analyse
from clinical_rules.evaluate import VIGNETTE_DIR, load_vignettes, main
from clinical_rules.interview_eval import FACTS_FILE, evaluate_interviews
from clinical_rules.simulated_caller import CallerFacts, SimulatedCaller, load_facts, run_interview

RS = load_ruleset()


def ask(caller: SimulatedCaller, qid: str) -> str:
    return caller.answer(Prompt(kind="question", text=RS.questions[qid].text, question_id=qid), RS)


def parsed(qid: str, text: str):
    return parse_answer(RS, RS.questions[qid], text, analyse(RS, text))


def test_answers_follow_the_facts_and_the_interview_understands_them():
    facts = CallerFacts(present=frozenset({"sweating", "persistent_vomiting"}), absent=frozenset({"chest_pressure"}),
                        severity=7, duration_hours=3, age_months=58 * 12)  # fmt: skip
    caller = SimulatedCaller("I have chest pain", facts)
    assert ask(caller, "chest.sweating") == "Yes."
    assert ask(caller, "chest.pressure") == "No."
    assert ask(caller, "gi.fluids") == "No."  # inverted: vomiting is present, so fluids do not stay down
    assert ask(caller, "chest.radiation") == "No."  # not in the facts: the stated default
    for qid in ("chest.sweating", "chest.pressure", "gi.fluids"):
        assert parsed(qid, ask(caller, qid)).status == "ok"
    assert parsed("general.severity", ask(caller, "general.severity")).value == 7
    assert parsed("general.onset", ask(caller, "general.onset")).value == pytest.approx(3)
    assert parsed("general.age", ask(caller, "general.age")).value == pytest.approx(58 * 12)


def test_unknown_facts_answer_not_sure_on_request_and_age_comes_from_the_band():
    caller = SimulatedCaller(
        "x", CallerFacts(), PatientContext(subject="child", age_band="under_3_months"), "unsure"
    )
    assert ask(caller, "chest.radiation") == "I'm not sure."
    assert parsed("chest.radiation", "I'm not sure.").status == "unsure"
    assert ask(caller, "general.severity") == "I'm not sure."
    assert parsed("general.age", ask(caller, "general.age")).facts[-1].value == "under_3_months"
    assert ask(caller, "general.pregnant") == "I'm not sure."


def test_a_clarify_request_gets_the_statement_once_then_i_dont_know():
    caller = SimulatedCaller("my chest hurts")
    clarify = Prompt(kind="clarify", text="Could you tell me more?")
    assert caller.answer(clarify, RS) == "my chest hurts"
    assert caller.answer(clarify, RS) == "I don't know."


def test_the_answers_change_the_final_level():
    statement = "I've had some chest pain on and off today"
    plain = run_interview(statement, facts=CallerFacts(age_months=58 * 12))
    sweaty = run_interview(statement, facts=CallerFacts(present=frozenset({"sweating"}), age_months=58 * 12))
    assert plain.finished and sweaty.finished
    assert plain.first_level == sweaty.first_level == 2
    # every cardiac feature denied: the rule's documented step-down to urgent care within hours
    assert plain.final_level == 3 and not plain.escalated
    assert sweaty.final_level == 1 and sweaty.escalated
    assert ("question:chest.sweating", "Yes.") in sweaty.turns


def test_bad_facts_are_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="unknown fact keys"):
        CallerFacts.from_mapping("D001", {"sweaty": True})
    with pytest.raises(ValueError, match="both present and absent"):
        CallerFacts.from_mapping("D001", {"present": ["sweating"], "absent": ["sweating"]})
    with pytest.raises(ValueError, match="unknown concepts"):
        CallerFacts.from_mapping("D001", {"present": ["sweatting"]}).check("D001", RS)
    with pytest.raises(ValueError, match="expected_final"):
        CallerFacts.from_mapping("D001", {"expected_final": 7})
    with pytest.raises(ValueError, match="one of"):
        SimulatedCaller("x", unknown="maybe")


def test_the_facts_file_names_real_vignettes_and_concepts():
    facts = load_facts(VIGNETTE_DIR / FACTS_FILE)
    ids = {v.id for v in load_vignettes(VIGNETTE_DIR / "dev.yaml")}
    assert len(facts) >= 30
    assert set(facts) <= ids
    for vid, f in facts.items():
        f.check(vid, RS)


@pytest.fixture(scope="module")
def whole_interviews():
    return evaluate_interviews()


def test_every_dev_vignette_as_a_whole_call_ends_with_a_level(whole_interviews):
    m, outcomes = whole_interviews
    assert m["n"] == len(load_vignettes(VIGNETTE_DIR / "dev.yaml"))
    assert m["unfinished"] == []
    assert m["no_level_at_end"] == []


def test_the_interview_never_loses_an_emergency_the_first_statement_caught(whole_interviews):
    """An emergency caught on the first statement stays caught on the final level, except where
    the caller denied every feature a rule lists in ``cleared_when_negated`` and the rule stepped
    down to its documented ``cleared_level`` (chest pain, breathing difficulty): those are listed
    in docs/clinical-rules.md for clinical review (NICE CG95 refers current chest pain without an
    ECG as an emergency). Any other loss fails here. Emergencies the first statement misses are
    the text evaluation's (test_vignettes.py)."""
    m, outcomes = whole_interviews
    caught = [o for o in outcomes if o.expected_final <= 2 and (o.run.first_level or 9) <= o.expected_final]
    assert len(caught) > 200
    lost = [o for o in caught if (o.run.final_level or 9) > o.expected_final]
    unexplained = [
        (o.vignette.id, o.expected_final, o.run.final_level, o.run.rule_ids)
        for o in lost
        if not any(
            RS.rules_by_id[r].cleared_level == o.run.final_level
            for r in o.run.rule_ids
            if r in RS.rules_by_id
        )
    ]
    assert unexplained == []
    assert len(lost) / len(caught) <= 0.05


def test_calls_with_facts_end_where_the_guidance_says(whole_interviews):
    """Measured 36 of 41 (docs/clinical-rules.md, "Whole-interview evaluation")."""
    _, outcomes = whole_interviews
    with_facts = [o for o in outcomes if o.has_facts]
    exact = [o for o in with_facts if o.run.final_level == o.expected_final]
    assert len(exact) / len(with_facts) >= 0.85, [
        (o.vignette.id, o.expected_final, o.run.final_level) for o in with_facts if o not in exact
    ]
    # the answers did raise the calls whose facts hold a red flag
    raised = {o.vignette.id for o in with_facts if o.run.final_level == 1 and (o.run.first_level or 9) > 1}
    assert {"D029", "D049", "H025", "H034", "D042"} <= raised


def test_the_interview_command_prints_the_final_disposition_figures(capsys, tmp_path):
    out_json = tmp_path / "interview.json"
    assert main(["--interview", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "whole interview" in out and "emergency recall on the final level" in out
    assert out_json.exists() and '"final_level"' in out_json.read_text()
