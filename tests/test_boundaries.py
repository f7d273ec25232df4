"""Layering: voice/ and clinical_rules/ are plain Python and never import Django; the runtime
packages never import the evaluation code in evals/."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


RUNTIME_PACKAGES = ("voice", "clinical_rules", "triage")
# The allowed exceptions: ``python -m voice.simulate`` and ``python -m voice.safety_net_bench``
# stay the user's commands, thin modules that only start their evaluation module in evals/.
ENTRY_POINTS = {
    "voice/simulate.py": "evals.voice.simulate",
    "voice/safety_net_bench.py": "evals.voice.safety_net_bench",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["voice", "clinical_rules"])
def test_package_never_imports_django_or_the_django_side(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] in {"django", "channels", "celery", "triage", "config"}
        )
        for path in files
    }
    offenders = {path: mods for path, mods in offenders.items() if mods}
    assert offenders == {}


def test_clinical_rules_never_imports_an_llm():
    for path in (ROOT / "clinical_rules").rglob("*.py"):
        mods = imported_modules(path)
        assert not any(m.split(".")[0] in {"llama_cpp", "vllm", "voice"} for m in mods), path


def _names_evals(path: Path) -> list[str]:
    """Imports of ``evals`` and string constants naming it (importlib / runpy / ``-m`` targets)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = sorted(m for m in imported_modules(path) if m.split(".")[0] == "evals")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "evals" or node.value.startswith("evals."):
                found.append(repr(node.value))
    return found


@pytest.mark.parametrize("package", RUNTIME_PACKAGES)
def test_runtime_packages_never_import_the_evaluation_code(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {str(path.relative_to(ROOT)): _names_evals(path) for path in files}
    offenders = {p: names for p, names in offenders.items() if names and p not in ENTRY_POINTS}
    assert offenders == {}


@pytest.mark.parametrize("entry, target", sorted(ENTRY_POINTS.items()))
def test_an_entry_point_only_starts_its_evaluation_module(entry, target):
    path = ROOT / entry
    assert imported_modules(path) == {target}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # nothing at import time but the docstring and the ``__main__`` guard
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) == 1 and isinstance(body[0], ast.If), entry


def test_voice_evaluations_never_import_django_or_the_django_side():
    files = sorted((ROOT / "evals" / "voice").rglob("*.py"))
    assert files
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] in {"django", "channels", "celery", "triage", "config"}
        )
        for path in files
    }
    assert {p: mods for p, mods in offenders.items() if mods} == {}


def test_evaluation_code_never_imports_the_tests():
    for path in sorted((ROOT / "evals").rglob("*.py")):
        assert not any(m.split(".")[0] == "tests" for m in imported_modules(path)), path


def test_voice_reaches_clinical_rules_only_through_its_door():
    """The conversation sees the rules only through the DialoguePolicy it is handed
    (voice/interfaces.py, no import); the rules' data and models come through voice/clinical.py
    alone, so every dependency of the pipeline on the clinical side is one list."""
    files = sorted((ROOT / "voice").rglob("*.py"))
    crossing = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "clinical_rules"
        )
        for path in files
    }
    crossing = {path: mods for path, mods in crossing.items() if mods}
    assert set(crossing) == {"voice/clinical.py"}, crossing
    assert not any(
        m.split(".")[0] == "clinical_rules" for m in imported_modules(ROOT / "voice" / "interfaces.py")
    )
