"""The review timeline of one session, built from its audit trail.

The audit chain is the synchronous, tamper-evident record: turns, state transitions, rules
that fired (with their words), urgency changes, alerts, clinician actions, notifications and
connection gaps are all in it, even while Celery is still storing Turn rows. Each patient
turn gets its latency breakdown (the turn_metrics event of the same pipeline turn id).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from voice.telemetry import STAGES

from .. import affect
from ..audit import verify_chain
from ..models import AuditEvent, LatencySample, TriageSession, Turn
from .selectors import describe_reason, urgency_label

STAGE_ORDER = list(STAGES)


@dataclass
class Stage:
    name: str
    ms: float
    budget_ms: float | None
    missed: bool
    width_pct: float = 0.0


@dataclass
class Item:
    at: dt.datetime
    seq: int
    kind: str  # css class / template branch: turn, state, rules, alert, clinician, connection, system
    actor: str
    title: str
    text: str = ""
    speaker: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    turn_id: int | None = None


def _stages(turn_metrics: dict[str, Any], samples: dict[str, LatencySample]) -> list[Stage]:
    values: dict[str, float] = dict(turn_metrics.get("stages") or {})
    misses = set(turn_metrics.get("budget_misses") or ())
    for name, sample in samples.items():
        values.setdefault(name, sample.duration_ms)
    names = sorted(values, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else 99, s))
    out = []
    for name in names:
        sample = samples.get(name)
        out.append(
            Stage(
                name=name,
                ms=round(float(values[name]), 1),
                budget_ms=sample.budget_ms if sample else None,
                missed=name in misses or bool(sample and sample.budget_missed),
            )
        )
    peak = max((s.ms for s in out), default=0.0) or 1.0
    for s in out:
        s.width_pct = round(100.0 * s.ms / peak, 1)
    return out


def _agent_said(p: dict[str, Any]) -> str:
    """The fixed words the agent spoke at a hand-over (the event's ``spoken``)."""
    return f"Agent said: “{p.get('spoken', '')}”"


def _item(event: AuditEvent) -> Item | None:
    p = event.payload
    base = {"at": event.created_at, "seq": event.seq, "actor": event.actor}
    match event.kind:
        case "session_created":
            return Item(kind="system", title="Session started", detail=p, **base)
        case "patient_turn":
            return Item(
                kind="turn",
                speaker="patient",
                title="Patient",
                text=p.get("text", ""),
                turn_id=p.get("turn_id"),
                detail={"confidence": p.get("avg_logprob"), "index": p.get("turn_index")},
                **base,
            )
        case "agent_turn":
            flags = [p.get("source") or ""]
            if p.get("interrupted"):
                flags.append("interrupted")
            if p.get("fallback_used"):
                flags.append("fallback")
            return Item(
                kind="turn",
                speaker="agent",
                title="Agent",
                text=p.get("text", ""),
                turn_id=p.get("turn_id"),
                detail={
                    "flags": [f for f in flags if f],
                    "played_ms": p.get("played_ms"),
                    "index": p.get("turn_index"),
                },
                **base,
            )
        case "state_transition":
            return Item(
                kind="state", title=f"{p.get('from')} → {p.get('to')}", text=p.get("cause", ""), **base
            )
        case "urgency_changed":
            applied = p.get("applied", True)
            title = f"Urgency {p.get('from') or '-'} → {p.get('to')} ({urgency_label(p.get('to'))})"
            if not applied:
                title += " — not applied, clinician override stands"
            return Item(
                kind="rules",
                title=title,
                text=p.get("disposition") or "",
                reasons=[describe_reason(r) for r in p.get("reasons", [])],
                detail={"on_partial": p.get("on_partial")},
                turn_id=p.get("turn_id"),
                **base,
            )
        case "escalation_raised":
            return Item(
                kind="alert",
                title=f"Escalation: {urgency_label(p.get('level'))}",
                text=p.get("disposition", ""),
                reasons=[describe_reason(r) for r in p.get("reasons", [])],
                detail={
                    "on_partial": p.get("on_partial"),
                    "alert_id": p.get("alert_id"),
                    "rule_ids": p.get("rule_ids", []),
                },
                turn_id=p.get("turn_id"),
                **base,
            )
        case "safety_net_alert":
            return Item(
                kind="alert",
                title=f"Possible red flag ({p.get('entry_id')}, similarity {p.get('score')}) — rules did not fire",
                text=f"semantic safety net; asked next: {p.get('question_id')}",
                detail=p,
                **base,
            )
        case "affect_tags":  # how the caller spoke (triage/affect.py): attention, never a level
            return Item(
                kind="alert" if p.get("attention") else "rules",
                title=affect.timeline_title(p),
                text=affect.timeline_text(p),
                detail={"features": p.get("features") or {}, "baseline": p.get("baseline")},
                turn_id=p.get("turn_id"),
                **base,
            )
        case "alert_acknowledged":
            return Item(
                kind="clinician",
                title=f"Alert acknowledged by {p.get('by')}",
                text=p.get("note", ""),
                detail=p,
                **base,
            )
        case "clinician_took_over":
            return Item(
                kind="clinician",
                title=f"Call taken over by {p.get('by')}",
                text=_agent_said(p),
                detail=p,
                **base,
            )
        case "clinician_turn":  # the clinician's words during a hand-off (triage/clinician_speech.py)
            return Item(
                kind="turn",
                speaker="clinician",
                title=f"Clinician ({p.get('by')})",
                text=p.get("text", ""),
                detail={"index": p.get("turn_index")},
                **base,
            )
        case "clinician_handed_back":
            return Item(
                kind="clinician",
                title=f"Handed back to the agent by {p.get('by')}",
                text=p.get("note") or _agent_said(p),
                detail=p,
                **base,
            )
        case "clinician_closed_call":
            return Item(
                kind="clinician",
                title=f"Call closed by {p.get('by')}: {p.get('disposition')}",
                text=f"Note: {p.get('note', '')}",
                detail=p,
                **base,
            )
        case "clinician_connection_lost":
            return Item(
                kind="alert",
                title=f"Clinician {p.get('by')} lost: the call went back to the agent",
                text=_agent_said(p),
                detail=p,
                **base,
            )
        case "clinician_listen_started" | "clinician_voice_started":
            what = "listening" if event.kind == "clinician_listen_started" else "talking"
            return Item(kind="clinician", title=f"{p.get('by')} started {what}", detail=p, **base)
        case "clinician_listen_ended" | "clinician_voice_ended":
            what = "listening" if event.kind == "clinician_listen_ended" else "talking"
            return Item(
                kind="clinician", title=f"{p.get('by')} stopped {what}", text=f"{p.get('seconds')} s", **base
            )
        case "callback_number_set":
            return Item(kind="system", title="Callback number given", text=str(p.get("number", "")), **base)
        case "urgency_overridden":
            return Item(
                kind="clinician",
                title=f"Urgency overridden by {p.get('by')}: {p.get('from') or '-'} → {p.get('to')} "
                f"({urgency_label(p.get('to'))})",
                text=f"Reason: {p.get('reason', '')}",
                detail=p,
                **base,
            )
        case "notification_sent" | "notification_failed":
            verb = "sent" if event.kind == "notification_sent" else "FAILED"
            return Item(
                kind="system",
                title=f"Escalation {p.get('channel')} notification {verb}",
                text=f"attempts: {p.get('attempts')}",
                detail=p,
                **base,
            )
        case "queued":  # all lines busy (triage/admission/): told the place and the emergency advice
            return Item(
                kind="connection",
                title="All lines busy: waiting for a line",
                text=f"number {p.get('position')} on {p.get('node')} ({p.get('waiting')} waiting)",
                detail=p,
                **base,
            )
        case "admitted" | "queue_left":
            seconds = round((p.get("waited_ms") or 0) / 1000)
            title = "Connected after waiting" if event.kind == "admitted" else "Left the waiting line"
            reason = f", {p.get('reason')}" if event.kind == "queue_left" else ""
            return Item(kind="connection", title=title, text=f"{seconds} s{reason}", detail=p, **base)
        case "socket_connected" | "socket_disconnected" | "socket_reconnected":
            return Item(kind="connection", title=event.kind.replace("_", " ").capitalize(), detail=p, **base)
        case "barge_in":
            return Item(
                kind="state",
                title="Patient interrupted the agent",
                text=f"agent stopped in {p.get('stop_ms')} ms",
                turn_id=p.get("turn_id"),
                **base,
            )
        case "budget_missed":
            return Item(
                kind="system",
                title=f"Latency budget missed: {p.get('stage')}",
                text=f"{p.get('actual_ms')} ms > {p.get('budget_ms')} ms",
                turn_id=p.get("turn_id"),
                **base,
            )
        case "pipeline_error":
            return Item(
                kind="system", title=f"Pipeline error ({p.get('stage')})", text=p.get("code", ""), **base
            )
        case "acoustic_anomaly":
            return Item(kind="system", title=f"Audio: {p.get('kind')}", text=str(p.get("value")), **base)
        case "session_ended" | "session_abandoned":
            title = (
                "Session ended" if event.kind == "session_ended" else "Session closed as abandoned (drop-off)"
            )
            return Item(kind="system", title=title, text=str(p.get("reason", "")), detail=p, **base)
        case "turn_metrics":
            return None  # attached to the patient turn below
        case "affect_baseline":
            return None  # numbers for a resumed call; a tagged turn shows the baseline it used
    return Item(kind="system", title=event.kind.replace("_", " "), detail=p, **base)


def build(session: TriageSession) -> dict[str, Any]:
    events = list(AuditEvent.objects.filter(session=session).order_by("seq"))
    samples: dict[int, dict[str, LatencySample]] = {}
    for sample in LatencySample.objects.filter(session=session):
        samples.setdefault(sample.turn_id, {})[sample.stage] = sample
    metrics_by_turn = {e.payload.get("turn_id"): e.payload for e in events if e.kind == "turn_metrics"}

    items: list[Item] = []
    for event in events:
        item = _item(event)
        if item is None:
            continue
        if item.kind == "turn" and item.speaker == "patient" and item.turn_id is not None:
            item.stages = _stages(metrics_by_turn.get(item.turn_id, {}), samples.get(item.turn_id, {}))
        items.append(item)

    audited_turns = sum(1 for e in events if e.kind in ("patient_turn", "agent_turn"))
    return {
        "items": items,
        "audit_events": len(events),
        "chain_break": verify_chain(session.pk),
        "turns_audited": audited_turns,
        "turns_stored": Turn.objects.filter(session=session).count(),
    }
