"""The public API others code against, the voice Protocols, and the no-diagnosis rule."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import clinical_rules
from clinical_rules import (
    Assessment,
    Finding,
    PatientContext,
    Prompt,
    RuleSet,
    RuleSetError,
    TriageInterview,
    UrgencyLevel,
    assess,
    load_ruleset,
)

ROOT = Path(__file__).resolve().parents[2]

# Words that name a condition: the agent may never say them to the patient.
DIAGNOSES = (
    "stroke", "heart attack", "cardiac arrest", "angina", "sepsis", "septic", "meningitis", "anaphylaxis",
    "anaphylactic", "appendicitis", "ectopic", "miscarriage", "pre-eclampsia", "preeclampsia", "pneumonia",
    "asthma", "epilepsy", "concussion", "fracture", "infection", "diabetes", "overdose", "torsion", "migraine",
    "you have", "you've got", "this may be", "this could be", "sounds like", "diagnos", "it's probably",
)  # fmt: skip


def test_public_names():
    for name in ("load_ruleset", "RuleSet", "RuleSetError", "assess", "Assessment", "Finding", "UrgencyLevel",
                 "PatientContext", "TriageInterview", "Prompt"):  # fmt: skip
        assert hasattr(clinical_rules, name)
    assert issubclass(RuleSetError, Exception) and isinstance(load_ruleset(), RuleSet)
    assert [int(lvl) for lvl in UrgencyLevel] == [1, 2, 3, 4, 5]
    assert UrgencyLevel(3).disposition == "urgent_care_hours"
    with pytest.raises(ValueError):
        PatientContext(subject="dog")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PatientContext(age_band="toddler")


def test_assessment_fields(rs):
    a = assess(["I have had a headache since this morning"], context=PatientContext(), ruleset=rs)
    assert isinstance(a, Assessment) and isinstance(a.level, UrgencyLevel)
    assert a.disposition == "primary_care_days" and a.escalate is False and a.ruleset_version == rs.version
    assert all(isinstance(f, Finding) for f in a.reasons)
    f = a.reasons[0]
    for field in ("rule_id", "rule_version", "label", "evidence_text", "start", "end", "assertion", "explanation",
                  "provenance"):  # fmt: skip
        assert hasattr(f, field)
    assert isinstance(a.next_question, Prompt)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["level"] == 4 and d["reasons"][0]["words"] == ["headache"]
    assert "Urgency: level 4" in a.explanation()


def test_prompt_is_frozen(rs):
    p = TriageInterview(ruleset=rs).opening()
    with pytest.raises(AttributeError):
        p.text = "x"  # type: ignore[misc]
    assert (p.kind, p.fixed, p.rule_ids, p.question_id, p.complaint) == ("greeting", True, (), None, None)


def test_satisfies_voice_protocols(rs):
    interfaces = pytest.importorskip("voice.interfaces")
    iv = TriageInterview(ruleset=rs)
    assert isinstance(iv.opening(), interfaces.Prompt)  # runtime_checkable
    a = iv.observe_final("my chest hurts")

    def uses_protocols(policy: interfaces.DialoguePolicy, assessment: interfaces.Assessment) -> None:
        assert isinstance(assessment.to_dict(), dict)

    uses_protocols(iv, a)
    for name in ("opening", "observe_partial", "observe_final", "next_prompt"):
        assert callable(getattr(iv, name))
    for name in ("level", "disposition", "escalate"):
        assert hasattr(a, name)


def test_no_prompt_names_a_diagnosis(rs):
    texts = rs.fixed_phrases() + [rs.clarify_answer[k] for k in rs.clarify_answer]
    assert len(texts) > 60
    for text in texts:
        low = text.lower()
        for word in DIAGNOSES:
            assert not re.search(rf"\b{re.escape(word)}", low), f"{word!r} in {text!r}"


def test_emergency_scripts_are_fixed_and_carry_the_number(rs):
    for script in rs.scripts.values():
        assert rs.emergency_number in script.text
    p = assess(["he's choking and can't breathe"], ruleset=rs).next_question
    assert p.kind == "emergency" and p.fixed and p.text == rs.scripts["breathing"].text


def test_fixed_phrases_helper():
    phrases = clinical_rules.fixed_phrases()
    assert phrases and all(isinstance(p, str) and p for p in phrases)


def test_no_django_import():
    code = "import sys, clinical_rules; clinical_rules.assess(['chest pain']); print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_shell_entry_point():
    out = subprocess.run([sys.executable, "-m", "clinical_rules", "my face is drooping", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["level"] == 1 and d["escalate"] and d["reasons"][0]["rule_id"] == "RF-STROKE-001"
    out = subprocess.run([sys.executable, "-m", "clinical_rules", "I've got a sore throat"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and "Urgency: level 5" in out.stdout and "URG-RESP-001" in out.stdout


def test_evaluate_command():
    out = subprocess.run([sys.executable, "-m", "clinical_rules.evaluate"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    for needle in (
        "== dev",
        "== heldout",
        "emergency recall",
        "under-triage rate",
        "over-triage rate",
        "level accuracy",
    ):
        assert needle in out.stdout


def test_bench_returns_numbers(capsys):
    from clinical_rules import bench

    r = bench.run(iterations=20, words=100)
    assert r["words"] == 100 and r["p95_ms"] > 0 and r["cpu_p95_ms"] > 0 and "meets_target" in r
    assert "observe_partial p95" in capsys.readouterr().out
