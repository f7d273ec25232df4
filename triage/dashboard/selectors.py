"""Selectors (reads) for the dashboard: what it shows for a session, one JSON-ready row (snapshot,
live updates, API). Writes are in services.py."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from .. import affect, callback
from ..models import EscalationAlert, TriageSession, UrgencyLevel

OPEN_STATUSES = (
    TriageSession.Status.ACTIVE,
    TriageSession.Status.ESCALATED,
    TriageSession.Status.CLINICIAN,
)

_RULE_KEYS = ("rule_id", "id", "rule")
_LABEL_KEYS = ("label", "title", "name", "summary", "description")
# clinical_rules' Finding.to_dict() carries "words" (every contributing phrase) and "evidence_text".
_WORD_KEYS = ("words", "evidence_text", "matched", "matched_text", "evidence", "trigger", "phrase", "text")


def describe_reason(reason: Any) -> dict[str, Any]:
    """Normalise a rule reason (clinical_rules' dict) to rule id, label and the words that fired it."""
    if not isinstance(reason, dict):
        return {"rule": "", "label": str(reason), "words": [], "assertion": "", "explanation": ""}
    rule = next((str(reason[k]) for k in _RULE_KEYS if reason.get(k)), "")
    label = next((str(reason[k]) for k in _LABEL_KEYS if reason.get(k)), "")
    words: list[str] = []
    for key in _WORD_KEYS:
        value = reason.get(key)
        if isinstance(value, str) and value:
            words.append(value)
        elif isinstance(value, list | tuple):
            words.extend(str(v.get("text", v)) if isinstance(v, dict) else str(v) for v in value if v)
    return {
        "rule": rule,
        "label": label or rule,
        "words": list(dict.fromkeys(words)),
        # present / uncertain / negated / ...: a negated finding is shown as such, never as a red flag.
        "assertion": str(reason.get("assertion") or ""),
        "explanation": str(reason.get("explanation") or ""),
    }


def urgency_label(level: int | None) -> str:
    return UrgencyLevel(level).label if level in UrgencyLevel.values else "Not yet assessed"


def alert_dict(alert: EscalationAlert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "session_id": str(alert.session_id),
        "level": alert.level,
        "level_label": urgency_label(alert.level),
        "disposition": alert.disposition,
        "rule_ids": list(alert.rule_ids),
        "reasons": [describe_reason(r) for r in alert.reasons],
        "on_partial": alert.on_partial,
        "status": alert.status,
        "created_at": alert.created_at.isoformat(),
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }


def session_row(
    session: TriageSession, alerts: list[EscalationAlert], attention: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``attention``: the affect tags that raised the clinician-attention flag (triage/affect.py)."""
    now = timezone.now()
    end = session.ended_at or now
    open_alerts = [a for a in alerts if a.status == EscalationAlert.Status.OPEN]
    return {
        "id": str(session.pk),
        "short_id": str(session.pk)[:8],
        "status": session.status,
        "status_label": session.get_status_display(),
        "state": session.state,
        "urgency_level": session.urgency_level,
        "urgency_label": urgency_label(session.urgency_level),
        "urgency_overridden": session.urgency_overridden,
        "disposition": session.disposition,
        "latest_partial": session.latest_partial,
        "subject": session.subject,
        "age_band": session.age_band,
        "created_at": session.created_at.isoformat(),
        "duration_s": round(max(0.0, (end - session.created_at).total_seconds()), 1),
        "last_activity_at": session.last_activity_at.isoformat(),
        "open": session.is_open,
        "escalated": session.status == TriageSession.Status.ESCALATED or bool(open_alerts),
        "open_alerts": [alert_dict(a) for a in open_alerts],
        "alerts": len(alerts),
        # How the caller speaks (breathless, slurred/slow, high distress): look, listen, never a level.
        "attention": attention or [],
        "taken_over_by": session.taken_over_by.get_username() if session.taken_over_by_id else None,
        "review_url": f"/review/{session.pk}/",
        "callback_number": session.callback_number,
        "callback_tel": callback.tel_href(session.callback_number),
        # Escalated (an alert, or level 1-2) and dropped: shown prominently until the window ends.
        "call_back": callback.needs_call_back(session, bool(alerts) or session.urgency_level in (1, 2)),
    }


def sort_key(row: dict[str, Any]) -> tuple:
    """Open alerts first, then dropped calls to call back, then escalated, then most urgent
    (1 is most urgent), then newest."""
    level = row["urgency_level"] or 9
    return (
        not row["open_alerts"],
        not row["call_back"],
        not row["escalated"],
        level,
        -_ts(row["created_at"]),
    )


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _alerts_by_session(session_ids) -> dict[str, list[EscalationAlert]]:
    out: dict[str, list[EscalationAlert]] = {}
    for alert in EscalationAlert.objects.filter(session_id__in=session_ids).select_related("acknowledged_by"):
        out.setdefault(str(alert.session_id), []).append(alert)
    return out


def fetch_row(session_id) -> dict[str, Any] | None:
    session = TriageSession.objects.select_related("taken_over_by").filter(pk=session_id).first()
    if session is None:
        return None
    return session_row(
        session,
        _alerts_by_session([session.pk]).get(str(session.pk), []),
        affect.attention_by_session([session.pk]).get(str(session.pk)),
    )


def active_rows(limit: int = 200) -> list[dict[str, Any]]:
    """Open sessions (newest ``limit``), plus every session with an open alert whatever its
    status or age: an unacknowledged alert must be on the dashboard even if the call has ended
    (say, while a Redis outage held its broadcast) or is older than the newest ``limit``."""
    alerted = set(
        EscalationAlert.objects.filter(status=EscalationAlert.Status.OPEN).values_list(
            "session_id", flat=True
        )
    )
    newest = set(
        TriageSession.objects.filter(status__in=OPEN_STATUSES)
        .order_by("-created_at")
        .values_list("pk", flat=True)[:limit]
    )
    dropped = set(
        TriageSession.objects.filter(
            end_reason__in=callback.DROPPED_REASONS, ended_at__gte=callback.call_back_cutoff()
        )
        .exclude(callback_number="")
        .values_list("pk", flat=True)[:limit]
    )
    sessions = list(
        TriageSession.objects.filter(pk__in=newest | alerted | dropped).select_related("taken_over_by")
    )
    alerts = _alerts_by_session([s.pk for s in sessions])
    attention = affect.attention_by_session([s.pk for s in sessions])
    rows = [session_row(s, alerts.get(str(s.pk), []), attention.get(str(s.pk))) for s in sessions]
    rows = [r for r in rows if r["open"] or r["open_alerts"] or r["call_back"]]
    rows.sort(key=sort_key)
    return rows
