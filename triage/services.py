"""Persistence of what happens in a call. Synchronous ORM code; consumers call it through
``database_sync_to_async`` from one ordered writer task per call, never from the audio path."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from voice import events as ev

from . import callback, outbox
from .audit import append_event
from .models import (
    AuditEvent,
    EscalationAlert,
    LatencySample,
    OutboxMessage,
    StateTransition,
    TriageSession,
    Turn,
)

# Session statuses that the voice state machine may move a call between.
_STATUS_FOR_STATE = {"escalated": TriageSession.Status.ESCALATED, "ended": TriageSession.Status.ENDED}


def _reserve_turn_index(session_id) -> int:
    """Next turn position, assigned in the writer's transaction (the row itself is stored by
    Celery, so order must not depend on which task runs first)."""
    TriageSession.objects.select_for_update().only("pk").get(pk=session_id)
    TriageSession.objects.filter(pk=session_id).update(turn_seq=F("turn_seq") + 1)
    return TriageSession.objects.values_list("turn_seq", flat=True).get(pk=session_id)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def create_session(
    *, subject: str, age_band: str, pregnant: bool | None, consent: bool, callback_number: str = ""
) -> tuple[TriageSession, str]:
    with transaction.atomic():
        session, token = TriageSession.create_with_token(
            subject=subject,
            age_band=age_band,
            pregnant=pregnant,
            consent_at=timezone.now() if consent else None,
            callback_number=callback_number,
        )
        append_event(
            session,
            AuditEvent.Kind.SESSION_CREATED,
            {"subject": subject, "age_band": age_band, "pregnant": pregnant, "consent": consent},
            actor="patient",
        )
        if callback_number:
            # Audited that it was given (and which, masked); the number itself lives on the session.
            append_event(
                session,
                AuditEvent.Kind.CALLBACK_NUMBER_SET,
                {"number": callback.masked(callback_number)},
                actor="patient",
            )
    return session, token


def record_connection(session_id, kind: str, detail: dict[str, Any] | None = None) -> None:
    """Connects, disconnects and reconnects (the audit trail shows gaps in a call)."""
    TriageSession.objects.filter(pk=session_id).update(last_activity_at=timezone.now())
    append_event(session_id, kind, detail or {}, actor="system")


def record_state_change(session_id, event: ev.StateChanged, at: dt.datetime) -> None:
    with transaction.atomic():
        StateTransition.objects.create(
            session_id=session_id,
            turn_id=event.turn_id,
            from_state=event.previous,
            to_state=event.current,
            cause=event.cause[:64],
            at=at,
        )
        updates: dict[str, Any] = {"state": event.current, "last_activity_at": at}
        if event.current in _STATUS_FOR_STATE:
            updates["status"] = _STATUS_FOR_STATE[event.current]
            if event.current == "ended":
                updates["ended_at"] = at
                updates["end_reason"] = event.cause[:64]  # a dropped escalated call needs a call-back
        closed = [TriageSession.Status.ENDED, TriageSession.Status.ABANDONED]
        if event.current == "escalated":
            closed.append(TriageSession.Status.CLINICIAN)  # a clinician already holds the call
            TriageSession.objects.filter(pk=session_id, status=TriageSession.Status.CLINICIAN).update(
                state=event.current, last_activity_at=at
            )
        TriageSession.objects.filter(pk=session_id).exclude(status__in=closed).update(**updates)
        append_event(
            session_id,
            AuditEvent.Kind.STATE_TRANSITION,
            {"from": event.previous, "to": event.current, "cause": event.cause, "turn_id": event.turn_id},
            actor="agent",
        )


def record_patient_turn(
    session_id, event: ev.FinalTranscript, started: dt.datetime, ended: dt.datetime
) -> int | None:
    """Audit the turn and queue its Turn row for Celery, atomically. Returns the turn's index,
    or None when this turn was already recorded (same idempotency key)."""
    key = f"patient:{session_id}:{event.turn_id}"
    try:
        with transaction.atomic():
            index = _reserve_turn_index(session_id)
            TriageSession.objects.filter(pk=session_id).update(latest_partial="", last_activity_at=ended)
            append_event(
                session_id,
                AuditEvent.Kind.PATIENT_TURN,
                {
                    "turn_index": index,
                    "turn_id": event.turn_id,
                    "text": event.text,
                    "avg_logprob": event.avg_logprob,
                    "no_speech_prob": event.no_speech_prob,
                },
                actor="patient",
            )
            outbox.enqueue(
                "turn.record",
                key,
                {
                    "session_id": str(session_id),
                    "index": index,
                    "speaker": Turn.Speaker.PATIENT.value,
                    "text": event.text,
                    "started_at": _iso(started),
                    "ended_at": _iso(ended),
                    "asr_avg_logprob": event.avg_logprob,
                    "asr_no_speech_prob": event.no_speech_prob,
                    "pipeline_turn_id": event.turn_id,
                },
            )
            return index
    except IntegrityError:
        return None  # already recorded under this idempotency key


def record_agent_turn(
    session_id,
    event: ev.AgentReplyFinished,
    source: str,
    played_ms: float | None,
    started: dt.datetime | None,
    ended: dt.datetime,
) -> int | None:
    key = f"agent:{session_id}:{event.reply_id}"
    try:
        with transaction.atomic():
            index = _reserve_turn_index(session_id)
            append_event(
                session_id,
                AuditEvent.Kind.AGENT_TURN,
                {
                    "turn_index": index,
                    "reply_id": event.reply_id,
                    "text": event.text,
                    "source": source,
                    "interrupted": event.interrupted,
                    "fallback_used": event.fallback_used,
                    "played_ms": played_ms,
                    "turn_id": event.turn_id,
                },
                actor="agent",
            )
            outbox.enqueue(
                "turn.record",
                key,
                {
                    "session_id": str(session_id),
                    "index": index,
                    "speaker": Turn.Speaker.AGENT.value,
                    "text": event.text,
                    "started_at": _iso(started),
                    "ended_at": _iso(ended),
                    "reply_source": source,
                    "interrupted": event.interrupted,
                    "played_ms": played_ms,
                    "pipeline_turn_id": event.turn_id,
                },
            )
            return index
    except IntegrityError:
        return None


def store_turn(message: OutboxMessage) -> bool:
    """Outbox handler for ``turn.record``: create the Turn row unless its key already exists."""
    p = message.payload
    turn = Turn(
        session_id=p["session_id"],
        index=p["index"],
        speaker=p["speaker"],
        text=p["text"],
        started_at=dt.datetime.fromisoformat(p["started_at"]) if p.get("started_at") else None,
        ended_at=dt.datetime.fromisoformat(p["ended_at"]) if p.get("ended_at") else None,
        asr_avg_logprob=p.get("asr_avg_logprob"),
        asr_no_speech_prob=p.get("asr_no_speech_prob"),
        reply_source=p.get("reply_source") or "",
        interrupted=bool(p.get("interrupted", False)),
        played_ms=p.get("played_ms"),
        pipeline_turn_id=p.get("pipeline_turn_id"),
        idempotency_key=message.key,
    )
    # ON CONFLICT DO NOTHING: a redelivered task finds the row and adds nothing.
    Turn.objects.bulk_create([turn], ignore_conflicts=True)
    return True


def record_turn_message(message_id: int) -> bool | None:
    """Store one queued turn (the Celery task and the end-of-call flush both call this)."""
    return outbox.process(message_id, store_turn)


def flush_pending_turns(session_id) -> int:
    """Store the session's turns that Celery has not stored yet, in this process. Called when a
    call ends so its transcript is complete even while the worker or broker is down; the task,
    when it runs later, finds them processed and does nothing."""
    ids = (
        OutboxMessage.objects.filter(
            topic="turn.record", processed_at__isnull=True, payload__session_id=str(session_id)
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )
    return sum(1 for pk in list(ids) if record_turn_message(pk))


def record_assessment(session_id, event: ev.AssessmentUpdated) -> bool:
    """Store the urgency when it changes; returns True when it did. After a clinician override
    the rules' changes are still audited but no longer change the session's urgency."""
    session = TriageSession.objects.only(
        "urgency_level", "disposition", "urgency_overridden", "rules_urgency_level"
    ).get(pk=session_id)
    if session.urgency_overridden:
        if event.level is None or event.level == session.rules_urgency_level:
            return False
        with transaction.atomic():
            TriageSession.objects.filter(pk=session_id).update(rules_urgency_level=event.level)
            append_event(
                session_id,
                AuditEvent.Kind.URGENCY_CHANGED,
                {
                    "from": session.rules_urgency_level,
                    "to": event.level,
                    "disposition": event.disposition,
                    "on_partial": event.on_partial,
                    "reasons": list(event.reasons),
                    "turn_id": event.turn_id,
                    "applied": False,  # a clinician's override stands
                },
                actor="rules",
            )
        return False
    if event.level is None or (
        session.urgency_level == event.level and session.disposition == (event.disposition or "")
    ):
        return False
    with transaction.atomic():
        TriageSession.objects.filter(pk=session_id).update(
            urgency_level=event.level,
            rules_urgency_level=event.level,
            disposition=event.disposition or "",
            ruleset_version=str(event.detail.get("ruleset_version", ""))[:32],
        )
        append_event(
            session_id,
            AuditEvent.Kind.URGENCY_CHANGED,
            {
                "from": session.urgency_level,
                "to": event.level,
                "disposition": event.disposition,
                "on_partial": event.on_partial,
                "reasons": list(event.reasons),
                "turn_id": event.turn_id,
            },
            actor="rules",
        )
    return True


def record_escalation(session_id, event: ev.EscalationRaised) -> EscalationAlert:
    """Store the alert and queue its notifications (email, paging webhook) atomically."""
    with transaction.atomic():
        alert = EscalationAlert.objects.create(
            session_id=session_id,
            level=event.level,
            disposition=event.disposition,
            rule_ids=list(event.rule_ids),
            reasons=list(event.reasons),
            on_partial=event.on_partial,
        )
        TriageSession.objects.filter(pk=session_id).exclude(
            status__in=[
                TriageSession.Status.CLINICIAN,
                TriageSession.Status.ENDED,
                TriageSession.Status.ABANDONED,
            ]
        ).update(status=TriageSession.Status.ESCALATED)
        TriageSession.objects.filter(pk=session_id).update(
            urgency_level=event.level, disposition=event.disposition
        )
        append_event(
            session_id,
            AuditEvent.Kind.ESCALATION_RAISED,
            {
                "alert_id": alert.pk,
                "level": event.level,
                "disposition": event.disposition,
                "rule_ids": list(event.rule_ids),
                "reasons": list(event.reasons),
                "on_partial": event.on_partial,
                "turn_id": event.turn_id,
            },
            actor="rules",
        )
        for channel in ("email", "webhook"):
            outbox.enqueue(
                f"notify.{channel}",
                f"alert:{alert.pk}:{channel}",
                {"alert_id": alert.pk, "channel": channel, "session_id": str(session_id)},
            )
    return alert


SAFETY_NET_DISPOSITION = "possible_red_flag"


def record_safety_net_alert(
    session_id, reason: dict, rules_level: int | None, on_partial: bool, check_ms: float | None = None
) -> EscalationAlert:
    """A semantic-safety-net alert (clinical_rules.safety_net): an open alert row for the dashboard
    and an audited event. It never changes the session's level, disposition or status, and sends
    no email or page: it asks a clinician to look, the rules decide. The row's ``level`` is the
    rules' level at the time (3 while they have none, "when unsure, triage up" for the display only)."""
    with transaction.atomic():
        alert = EscalationAlert.objects.create(
            session_id=session_id,
            level=rules_level if rules_level is not None else 3,
            disposition=SAFETY_NET_DISPOSITION,
            rule_ids=[str(reason.get("rule_id", ""))],
            reasons=[reason],
            on_partial=on_partial,
        )
        append_event(
            session_id,
            AuditEvent.Kind.SAFETY_NET_ALERT,
            {
                "alert_id": alert.pk,
                "entry_id": reason.get("rule_id"),
                "score": reason.get("score"),
                "question_id": reason.get("question_id"),
                "rules_level": rules_level,
                "on_partial": on_partial,
                "check_ms": round(check_ms, 1) if check_ms is not None else None,
            },
            actor="safety_net",
        )
    return alert


def record_turn_metrics(session_id, event: ev.TurnMetrics, budgets: dict[str, float]) -> int:
    rows = []
    stages = dict(event.stages)
    if event.response_onset_ms is not None:
        stages["response_onset"] = event.response_onset_ms
    if event.answer_onset_ms is not None:
        stages["answer_onset"] = event.answer_onset_ms
    for stage, duration in stages.items():
        if duration is None:
            continue
        budget = budgets.get(stage)
        rows.append(
            LatencySample(
                session_id=session_id,
                turn_id=event.turn_id,
                stage=stage[:32],
                duration_ms=float(duration),
                budget_ms=budget,
                budget_missed=stage in event.budget_misses or (budget is not None and duration > budget),
            )
        )
    LatencySample.objects.bulk_create(rows, ignore_conflicts=True)
    append_event(
        session_id,
        AuditEvent.Kind.TURN_METRICS,
        {k: v for k, v in asdict(event).items() if k != "t"},
        actor="agent",
    )
    return len(rows)


def record_partial(session_id, text: str) -> None:
    TriageSession.objects.filter(pk=session_id).update(
        latest_partial=text[:2000], last_activity_at=timezone.now()
    )


def record_audit(session_id, kind: str, payload: dict[str, Any], actor: str = "system") -> None:
    append_event(session_id, kind, payload, actor=actor)
