"""Layering: voice/ and clinical_rules/ are plain Python and never import Django."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
            m for m in imported_modules(path) if m.split(".")[0] in {"django", "channels", "celery", "triage"}
        )
        for path in files
    }
    offenders = {path: mods for path, mods in offenders.items() if mods}
    assert offenders == {}


def test_clinical_rules_never_imports_an_llm():
    for path in (ROOT / "clinical_rules").rglob("*.py"):
        mods = imported_modules(path)
        assert not any(m.split(".")[0] in {"llama_cpp", "vllm", "voice"} for m in mods), path
