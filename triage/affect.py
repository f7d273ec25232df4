"""The Django side of affect tags (voice/affect.py): Prometheus series, the audit record, and what
the dashboard row and the review timeline show. A tag never changes the session's level, status
or disposition: it is recorded (audit kind ``affect_tags``) and shown; the clinician decides.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prometheus_client import Counter, Histogram

from voice.affect import AffectObserved
from voice.paralinguistics import ParalinguisticFeatures

from .audit import append_event
from .models import AuditEvent, LatencySample

AUDIT_KIND = AuditEvent.Kind.AFFECT_TAGS
# A turn that joined the caller's baseline: its features (numbers, no words), so a call resumed
# on another node continues from the same baseline (triage/resume.py).
BASELINE_KIND = AuditEvent.Kind.AFFECT_BASELINE
# Per-turn telemetry: the extraction's CPU time is a LatencySample of the turn (review page,
# telemetry charts), with the 30 ms CPU target as its budget.
FEATURES_STAGE = "affect_features"
FEATURES_BUDGET_MS = 30.0

AFFECT_TAGS = Counter(
    "triage_affect_tags_total", "Affect / acoustic-sign tags on patient turns.", ["tag", "grade"]
)
AFFECT_ATTENTION = Counter(
    "triage_affect_attention_total",
    "Patient turns whose tags raised the clinician-attention flag, by tag.",
    ["tag"],
)
AFFECT_FEATURES = Histogram(
    "triage_affect_features_seconds",
    "CPU time of one turn's paralinguistic feature extraction (voice/paralinguistics.py).",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5),
)


def observe(event: AffectObserved) -> None:
    """Count one reading (cheap, synchronous: on the call's event path)."""
    reading = event.reading
    if reading.features is not None:
        AFFECT_FEATURES.observe(reading.features.cost_ms / 1000.0)
    for tag in reading.tags:
        AFFECT_TAGS.labels(tag=tag.name, grade=tag.grade).inc()
        if tag.attention:
            AFFECT_ATTENTION.labels(tag=tag.name).inc()


def audit_payload(event: AffectObserved, turn_id: int) -> dict[str, Any]:
    """What the audit keeps: the tags with the values that fired them, the turn's features and
    the baseline they were compared with, the questions queued. No transcript text (a distress
    cue is one of the rule file's fixed phrases)."""
    r = event.reading
    return {
        "turn_id": turn_id,
        "tags": [
            {k: v for k, v in t.to_dict().items() if k not in ("provenance", "explanation")}
            | {"label": t.label}
            for t in r.tags
        ],
        "attention": r.attention,
        "questions_queued": list(event.questions_queued),
        "features": _numbers(r.features.to_dict()) if r.features is not None else None,
        "baseline": r.baseline.to_dict() if r.baseline is not None else None,
        "rules_version": r.rules_version,
    }


def _numbers(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is None or isinstance(v, int | float)}


def record(session_id, event: AffectObserved, turn_id: int) -> AuditEvent | None:
    """The turn's extraction cost as a LatencySample; the turn's features if they joined the
    caller's baseline; the audit record if the reading has tags (an untagged turn is otherwise
    only counted and sampled)."""
    features = event.reading.features
    if features is not None:
        LatencySample.objects.bulk_create(
            [
                LatencySample(
                    session_id=session_id,
                    turn_id=turn_id,
                    stage=FEATURES_STAGE,
                    duration_ms=round(features.cost_ms, 2),
                    budget_ms=FEATURES_BUDGET_MS,
                    budget_missed=features.cost_ms > FEATURES_BUDGET_MS,
                )
            ],
            ignore_conflicts=True,
        )
    if event.reading.in_baseline and features is not None:
        payload = {
            "turn_id": turn_id,
            "features": _numbers(asdict(features)),  # unrounded: the resumed baseline is the same
            "rules_version": event.reading.rules_version,
        }
        append_event(session_id, BASELINE_KIND, payload, actor="affect")
    if not event.reading.tags:
        return None
    return append_event(session_id, AUDIT_KIND, audit_payload(event, turn_id), actor="affect")


def baseline_features(payloads) -> list[ParalinguisticFeatures]:
    """Stored baseline turns (``affect_baseline`` payloads, in order) back as features; a record
    that no longer fits the features' fields is skipped (the baseline then starts again)."""
    out = []
    for p in payloads:
        try:
            out.append(ParalinguisticFeatures.from_dict(p.get("features") or {}))
        except TypeError:
            continue
    return out


def attention_by_session(session_ids) -> dict[str, list[dict[str, Any]]]:
    """Per session: the attention tags raised so far (latest reading of each tag), for the row."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    events = AuditEvent.objects.filter(session_id__in=list(session_ids), kind=AUDIT_KIND).order_by("seq")
    for e in events.only("session_id", "payload", "seq"):
        for tag in e.payload.get("tags") or ():
            if tag.get("attention"):
                out.setdefault(str(e.session_id), {})[tag.get("tag", "")] = {
                    "tag": tag.get("tag", ""),
                    "label": tag.get("label", ""),
                    "grade": tag.get("grade", ""),
                    "turn_id": e.payload.get("turn_id"),
                    "evidence": tag.get("evidence") or [],
                }
    return {sid: list(tags.values()) for sid, tags in out.items()}


def timeline_title(p: dict[str, Any]) -> str:
    names = ", ".join(
        f"{t.get('label') or t.get('tag')}{' (high)' if t.get('grade') == 'high' else ''}"
        for t in p.get("tags", [])
    )
    flag = " — clinician attention" if p.get("attention") else ""
    return f"How the caller speaks: {names}{flag}"


def timeline_text(p: dict[str, Any]) -> str:
    """The values that fired each tag, and the question queued."""
    parts = []
    for t in p.get("tags", []):
        fired = "; ".join(
            f"{e.get('feature')} {e.get('value')} ({e.get('rule')})" for e in t.get("evidence", [])
        )
        parts.append(f"{t.get('tag')}: {fired}")
    if p.get("questions_queued"):
        parts.append("asked next: " + ", ".join(p["questions_queued"]))
    return " · ".join(parts)
