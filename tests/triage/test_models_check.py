"""`manage.py models_check` loads the real models and fails clearly when one is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.models


def models_check(**env_overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "models_check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_models_check_loads_asr_tts_and_llm():
    result = models_check()
    assert result.returncode == 0, result.stdout + result.stderr
    for stage in ("ASR  OK", "TTS  OK", "LLM  OK", "EMB  OK"):
        assert stage in result.stdout
    assert "All models loaded." in result.stdout


def test_models_check_names_a_missing_model_and_exits_non_zero(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    result = models_check(TRIAGE_LLM_GGUF=str(missing))
    assert result.returncode == 1
    assert "LLM  FAILED" in result.stdout and str(missing) in result.stdout
    assert "ASR  OK" in result.stdout  # the other models are still checked and reported
