"""Per-turn latency telemetry, budgets, and an event-loop lag probe.

A turn records absolute timestamps ("marks", session clock seconds) as they happen; a
stage is the time between two marks. Headline figures:

* response onset: end of the patient's speech -> first agent audio byte out
  (the cached acknowledgement counts);
* answer onset: end of the patient's speech -> first audio of the clause that carries the
  policy's question / disposition / script.

A stage over its configured budget yields one ``BudgetMissed`` as soon as it is known.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from voice.events import BudgetMissed, TurnMetrics

# Marks, in the order they normally happen.
MARKS = (
    "speech_start",
    "speech_end",  # end of the last voiced frame of the turn
    "asr_start",  # final decode started (at the first pause when speculating)
    "endpoint",  # end-of-turn decision
    "asr_final",
    "llm_start",
    "llm_first_token",
    "first_clause",
    "tts_start",  # synthesis of the answer clause started
    "tts_first_audio",
    "first_audio_out",  # first agent audio byte handed to the host
    "answer_audio_out",  # first audio byte of the clause carrying the prompt
    "barge_in_onset",
    "barge_in_paused",  # AgentPaused sent: the fast stop signal
    "interrupted",
)

# stage -> (from mark, to mark)
STAGES: dict[str, tuple[str, str]] = {
    "endpoint": ("speech_end", "endpoint"),
    "asr_final": ("speech_end", "asr_final"),
    "asr_compute": ("asr_start", "asr_final"),
    "llm_first_token": ("llm_start", "llm_first_token"),
    "first_clause": ("llm_start", "first_clause"),
    "tts_first_audio": ("tts_start", "tts_first_audio"),
    "response_onset": ("speech_end", "first_audio_out"),
    "answer_onset": ("speech_end", "answer_audio_out"),
    "barge_in_hold": ("barge_in_onset", "barge_in_paused"),
    "barge_in_stop": ("barge_in_onset", "interrupted"),
}


@dataclass
class TurnTelemetry:
    turn_id: int
    budgets_ms: dict[str, float]
    marks: dict[str, float] = field(default_factory=dict)
    partial_confidences: list[float] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    interrupted: bool = False
    fallback_used: bool = False
    speculative: bool = False  # reply work started before the endpoint was confirmed
    missed: list[str] = field(default_factory=list)
    _checked: set[str] = field(default_factory=set)

    def mark(self, name: str, t: float, *, overwrite: bool = False) -> list[BudgetMissed]:
        """Record ``name`` at ``t`` (first one wins unless ``overwrite``); return budget misses
        for the stages this mark completed."""
        if name not in MARKS:
            raise KeyError(f"unknown telemetry mark {name!r}")
        if name in self.marks and not overwrite:
            return []
        self.marks[name] = t
        out: list[BudgetMissed] = []
        for stage, (a, b) in STAGES.items():
            if name not in (a, b) or stage in self._checked:
                continue
            ms = self.stage_ms(stage)
            budget = self.budgets_ms.get(stage)
            if ms is None or budget is None:
                continue
            self._checked.add(stage)
            if ms > budget:
                self.missed.append(stage)
                out.append(BudgetMissed(self.turn_id, stage, float(budget), round(ms, 1), t))
        return out

    def stage_ms(self, stage: str) -> float | None:
        a, b = STAGES[stage]
        if a in self.marks and b in self.marks:
            return (self.marks[b] - self.marks[a]) * 1000.0
        return None

    def observe_partial(self, avg_logprob: float) -> None:
        # exp(mean token log-prob): a 0..1 figure that is easy to threshold and to average.
        if math.isfinite(avg_logprob):
            self.partial_confidences.append(math.exp(min(0.0, avg_logprob)))

    def finish(self, t: float) -> TurnMetrics:
        stages = {s: round(v, 1) for s in STAGES if (v := self.stage_ms(s)) is not None}
        conf = (
            round(sum(self.partial_confidences) / len(self.partial_confidences), 3)
            if self.partial_confidences
            else None
        )
        return TurnMetrics(
            turn_id=self.turn_id,
            stages=stages,
            response_onset_ms=stages.get("response_onset"),
            answer_onset_ms=stages.get("answer_onset"),
            partial_confidence=conf,
            interrupted=self.interrupted,
            fallback_used=self.fallback_used,
            budget_misses=tuple(self.missed),
            t=t,
        )


def percentile(values: Sequence[float] | Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": _r(percentile(values, 50)),
        "p95": _r(percentile(values, 95)),
        "max": _r(max(values) if values else None),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


class LoopLagMonitor:
    """Ticker task: sleeps ``interval_s`` and records how late it wakes up (ms).

    Lateness is time the loop spent running something else, i.e. what every other
    session's audio and events waited for."""

    def __init__(self, interval_s: float = 0.01, clock: Callable[[], float] = time.perf_counter):
        self.interval_s = interval_s
        self.clock = clock
        self.lags_ms: list[float] = []
        self._task: asyncio.Task | None = None

    def start(self) -> LoopLagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-monitor")
        return self

    async def _run(self) -> None:
        while True:
            t0 = self.clock()
            await asyncio.sleep(self.interval_s)
            self.lags_ms.append(max(0.0, (self.clock() - t0 - self.interval_s) * 1000.0))

    async def stop(self) -> dict[str, float | int | None]:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        return {
            "n": len(self.lags_ms),
            "p50": _r(percentile(self.lags_ms, 50)),
            "p99": _r(percentile(self.lags_ms, 99)),
            "max": _r(max(self.lags_ms) if self.lags_ms else None),
        }
