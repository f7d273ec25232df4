"""Per-turn telemetry: stage arithmetic, budgets, headline onsets, loop-lag probe."""

import asyncio
import time

import pytest

from voice.config import PipelineConfig
from voice.events import BudgetMissed
from voice.telemetry import LoopLagMonitor, TurnTelemetry, percentile, summarize


def test_stages_and_headline_onsets_are_differences_of_marks():
    tel = TurnTelemetry(3, {"response_onset": 400.0, "answer_onset": 800.0})
    tel.mark("speech_end", 10.0)
    tel.mark("endpoint", 10.3)
    tel.mark("asr_start", 10.2)
    tel.mark("asr_final", 10.45)
    tel.mark("first_audio_out", 10.32)
    tel.mark("answer_audio_out", 10.9)
    m = tel.finish(11.0)
    assert m.turn_id == 3
    assert m.response_onset_ms == pytest.approx(320.0)
    assert m.answer_onset_ms == pytest.approx(900.0)
    assert m.stages["endpoint"] == pytest.approx(300.0)
    assert m.stages["asr_compute"] == pytest.approx(250.0)
    assert "llm_first_token" not in m.stages  # stage did not run: absent, not zero
    assert m.budget_misses == ("answer_onset",)


def test_budget_miss_is_reported_once_when_the_closing_mark_lands():
    tel = TurnTelemetry(1, {"endpoint": 200.0})
    assert tel.mark("speech_end", 0.0) == []
    misses = tel.mark("endpoint", 0.5)
    assert len(misses) == 1 and isinstance(misses[0], BudgetMissed)
    assert (misses[0].stage, misses[0].budget_ms, misses[0].actual_ms) == ("endpoint", 200.0, 500.0)
    assert tel.mark("endpoint", 0.9) == []  # first mark wins
    assert tel.mark("endpoint", 0.9, overwrite=True) == []  # a stage is judged once


def test_within_budget_is_silent_and_unknown_marks_are_refused():
    tel = TurnTelemetry(1, PipelineConfig().budgets_ms)
    tel.mark("llm_start", 1.0)
    assert tel.mark("llm_first_token", 1.1) == []
    with pytest.raises(KeyError):
        tel.mark("made_up", 1.0)


def test_partial_confidence_is_mean_token_probability():
    tel = TurnTelemetry(1, {})
    tel.observe_partial(0.0)
    tel.observe_partial(-0.6931471805599453)  # p = 0.5
    assert tel.finish(0.0).partial_confidence == pytest.approx(0.75)
    assert TurnTelemetry(2, {}).finish(0.0).partial_confidence is None


def test_percentiles():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile(range(101), 95) == pytest.approx(95.0)
    assert summarize([1.0, 2.0, 3.0]) == {"n": 3, "p50": 2.0, "p95": 2.9, "max": 3.0}


async def test_loop_lag_monitor_sees_a_blocked_loop():
    mon = LoopLagMonitor(interval_s=0.005).start()
    await asyncio.sleep(0.03)
    time.sleep(0.08)  # deliberately block the loop: the probe must notice
    await asyncio.sleep(0.02)
    stats = await mon.stop()
    assert stats["n"] >= 3
    assert stats["max"] >= 50.0
