"""Rule files: the default set loads and validates; broken files are reported with file and line."""

import shutil
from pathlib import Path

import pytest

from clinical_rules import RuleSetError, assess, load_ruleset
from clinical_rules.loader import DEFAULT_PATH


def test_default_ruleset_loads_and_is_cached(rs):
    assert rs.version == "2026.12.33"
    assert load_ruleset() is rs
    assert len(rs.rules) > 100 and len(rs.concepts) > 100
    assert all(r.provenance and r.rationale and r.version for r in rs.rules)
    # every rule cites guidance that exists, and every escalating rule has a script
    for r in rs.rules:
        assert all(p in rs.provenance for p in r.provenance)
        if r.escalate:
            assert r.script in rs.scripts


@pytest.fixture
def ruleset_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "rules"
    shutil.copytree(DEFAULT_PATH, dst)
    return dst


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _errors(path: Path) -> list[tuple[str, int, str]]:
    with pytest.raises(RuleSetError) as exc:
        load_ruleset(path)
    return exc.value.errors


def test_bad_pattern_is_reported_with_file_and_line(ruleset_copy):
    f = ruleset_copy / "concepts.yaml"
    f.write_text(f.read_text().replace('"@CHEST *2 @PAIN"', '"@CHEST *2 @NOSUCHTERM"', 1))
    errors = _errors(ruleset_copy)
    hit = [e for e in errors if "NOSUCHTERM" in e[2]]
    assert hit, errors
    file, line, _ = hit[0]
    assert file.endswith("concepts.yaml")
    assert line == _line_of(f, "- id: chest_pain")


def test_unknown_concept_in_rule_is_reported(ruleset_copy):
    f = ruleset_copy / "red_flags.yaml"
    f.write_text(f.read_text().replace("when: {all: [face_droop]}", "when: {all: [face_dropp]}", 1))
    errors = _errors(ruleset_copy)
    hit = [e for e in errors if "face_dropp" in e[2]]
    assert hit and hit[0][0].endswith("red_flags.yaml")
    assert hit[0][1] == _line_of(f, "face_dropp")


def test_yaml_syntax_error_names_the_line(ruleset_copy):
    f = ruleset_copy / "urgency.yaml"
    lines = f.read_text().splitlines()
    lines[20] = lines[20] + " ]: {"
    f.write_text("\n".join(lines) + "\n")
    errors = _errors(ruleset_copy)
    assert errors[0][0].endswith("urgency.yaml")
    assert abs(errors[0][1] - 21) <= 1
    assert "syntax" in errors[0][2]


def test_duplicate_rule_id_and_missing_fields(ruleset_copy):
    f = ruleset_copy / "urgency.yaml"
    text = f.read_text().replace("id: URG-BREATH-002", "id: URG-BREATH-001", 1)
    text = text.replace(
        "    rationale: Most insect bites and stings cause a small reaction that settles with self-care.\n",
        "",
        1,
    )
    f.write_text(text)
    messages = [e[2] for e in _errors(ruleset_copy)]
    assert any("duplicate rule id 'URG-BREATH-001'" in m for m in messages)
    assert any("'rationale' must be a non-empty string" in m for m in messages)


def test_level_one_rule_must_escalate_and_cite_known_guidance(ruleset_copy):
    f = ruleset_copy / "red_flags.yaml"
    text = f.read_text().replace("provenance: [befast, nhs_vision_loss]", "provenance: [made_up_source]", 1)
    f.write_text(text)
    messages = [e[2] for e in _errors(ruleset_copy)]
    assert any("unknown provenance 'made_up_source'" in m for m in messages)


def test_emergency_number_is_a_ruleset_field(ruleset_copy):
    f = ruleset_copy / "ruleset.yaml"
    f.write_text(f.read_text().replace('emergency_number: "911"', 'emergency_number: "999"'))
    rs999 = load_ruleset(ruleset_copy)
    a = assess(["my face is drooping"], ruleset=rs999)
    assert a.escalate and "999" in a.next_question.text and "911" not in a.next_question.text
    assert "999" in rs999.texts["greeting"]


def test_missing_path_raises():
    with pytest.raises(RuleSetError):
        load_ruleset("/nonexistent/rules")
