"""Telemetry aggregates for the dashboard charts (computed by Celery beat, read by the views).

Per time bucket: p50/p95 and budget misses of every latency stage, the interruption success
rate (barge-ins where the agent stopped within its ``barge_in_stop`` budget), the LLM fallback
rate (agent replies phrased by the LLM that fell back to the deterministic text) and
drop-offs (sessions closed as abandoned among the sessions that ended).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from voice.telemetry import percentile

from ..models import LatencySample, TelemetryAggregate, TriageSession, Turn

MAX_WINDOW = dt.timedelta(days=7)
STAGE_PREFIX = "stage:"


def bucket_seconds() -> int:
    return int(settings.TRIAGE["TELEMETRY_BUCKET_SECONDS"])


def floor(t: dt.datetime, size: int) -> dt.datetime:
    epoch = int(t.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % size, tz=dt.UTC)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def compute(start: dt.datetime, end: dt.datetime, size: int | None = None) -> int:
    """Recompute every bucket overlapping [start, end); returns the number of rows written."""
    size = size or bucket_seconds()
    start = floor(start, size)
    end = floor(end, size) + dt.timedelta(seconds=size)

    stage_values: dict[tuple[dt.datetime, str], list[float]] = defaultdict(list)
    stage_misses: dict[tuple[dt.datetime, str], int] = defaultdict(int)
    for stage, ms, missed, at in LatencySample.objects.filter(
        recorded_at__gte=start, recorded_at__lt=end
    ).values_list("stage", "duration_ms", "budget_missed", "recorded_at"):
        key = (floor(at, size), stage)
        stage_values[key].append(ms)
        stage_misses[key] += int(missed)

    counts: dict[tuple[dt.datetime, str], list[int]] = defaultdict(lambda: [0, 0])  # [n, hits]
    for (bucket, stage), values in stage_values.items():
        if stage == "barge_in_stop":
            counts[(bucket, "interruption")][0] += len(values)
            counts[(bucket, "interruption")][1] += len(values) - stage_misses[(bucket, stage)]
    for source, ended_at in Turn.objects.filter(
        speaker=Turn.Speaker.AGENT,
        reply_source__in=["llm", "fallback"],
        ended_at__gte=start,
        ended_at__lt=end,
    ).values_list("reply_source", "ended_at"):
        key = (floor(ended_at, size), "llm_fallback")
        counts[key][0] += 1
        counts[key][1] += int(source == "fallback")
    for status, ended_at in TriageSession.objects.filter(ended_at__gte=start, ended_at__lt=end).values_list(
        "status", "ended_at"
    ):
        key = (floor(ended_at, size), "dropoff")
        counts[key][0] += 1
        counts[key][1] += int(status == TriageSession.Status.ABANDONED)

    now = timezone.now()
    rows = [
        TelemetryAggregate(
            bucket_start=bucket,
            bucket_seconds=size,
            metric=f"{STAGE_PREFIX}{stage}"[:48],
            n=len(values),
            hits=stage_misses[(bucket, stage)],
            p50_ms=_r(percentile(values, 50)),
            p95_ms=_r(percentile(values, 95)),
            computed_at=now,
        )
        for (bucket, stage), values in stage_values.items()
    ]
    rows += [
        TelemetryAggregate(
            bucket_start=bucket, bucket_seconds=size, metric=metric, n=n, hits=hits, computed_at=now
        )
        for (bucket, metric), (n, hits) in counts.items()
    ]
    with transaction.atomic():
        TelemetryAggregate.objects.filter(
            bucket_seconds=size, bucket_start__gte=start, bucket_start__lt=end
        ).delete()
        TelemetryAggregate.objects.bulk_create(rows)
    return len(rows)


def compute_recent(lookback: dt.timedelta = dt.timedelta(hours=2)) -> int:
    """Beat: recompute the recent buckets (late samples land in already computed buckets)."""
    now = timezone.now()
    return compute(now - lookback, now)


def ensure_fresh(start: dt.datetime, end: dt.datetime) -> None:
    """Embedded mode has no beat: when the aggregates are stale, compute the window here."""
    size = bucket_seconds()
    latest = TelemetryAggregate.objects.filter(bucket_seconds=size).aggregate(m=Max("computed_at"))["m"]
    stale_after = dt.timedelta(seconds=2 * settings.TRIAGE["TELEMETRY_RECOMPUTE_SECONDS"])
    if latest is None or timezone.now() - latest > stale_after:
        compute(start, end, size)


def series(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Chart data: one label per bucket that has data, and a value list per series."""
    size = bucket_seconds()
    aggregates = TelemetryAggregate.objects.filter(
        bucket_seconds=size, bucket_start__gte=floor(start, size), bucket_start__lt=end
    ).order_by("bucket_start")
    by_bucket: dict[dt.datetime, dict[str, TelemetryAggregate]] = defaultdict(dict)
    for agg in aggregates:
        by_bucket[agg.bucket_start][agg.metric] = agg
    buckets = sorted(by_bucket)

    def pick(metric: str, attr: str):
        out = []
        for b in buckets:
            agg = by_bucket[b].get(metric)
            if agg is None:
                out.append(None)
            elif attr == "rate":
                out.append(None if agg.rate is None else round(100.0 * agg.rate, 1))
            else:
                out.append(getattr(agg, attr))
        return out

    return {
        "bucket_seconds": size,
        "labels": [b.isoformat() for b in buckets],
        "response_onset_p50": pick("stage:response_onset", "p50_ms"),
        "response_onset_p95": pick("stage:response_onset", "p95_ms"),
        "response_onset_n": pick("stage:response_onset", "n"),
        "interruption_success_pct": pick("interruption", "rate"),
        "interruptions": pick("interruption", "n"),
        "llm_fallback_pct": pick("llm_fallback", "rate"),
        "agent_replies": pick("llm_fallback", "n"),
        "dropoffs": pick("dropoff", "hits"),
        "sessions_ended": pick("dropoff", "n"),
    }


def stage_breakdown(start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """p50/p95 per stage over the whole window (from the samples, not merged bucket percentiles)."""
    values: dict[str, list[float]] = defaultdict(list)
    misses: dict[str, int] = defaultdict(int)
    budgets: dict[str, float | None] = {}
    for stage, ms, missed, budget in LatencySample.objects.filter(
        recorded_at__gte=start, recorded_at__lt=end
    ).values_list("stage", "duration_ms", "budget_missed", "budget_ms")[:200_000]:
        values[stage].append(ms)
        misses[stage] += int(missed)
        if budget is not None:
            budgets[stage] = budget
    from voice.telemetry import STAGES

    order = [*STAGES, "alert_delivery"]
    names = sorted(values, key=lambda s: (order.index(s) if s in order else 99, s))
    return [
        {
            "stage": s,
            "n": len(values[s]),
            "p50_ms": _r(percentile(values[s], 50)),
            "p95_ms": _r(percentile(values[s], 95)),
            "budget_ms": budgets.get(s),
            "budget_misses": misses[s],
        }
        for s in names
    ]


def window(hours: float) -> tuple[dt.datetime, dt.datetime]:
    end = timezone.now()
    span = min(dt.timedelta(hours=hours), MAX_WINDOW)
    return end - span, end
