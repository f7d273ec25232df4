"""Channel-layer groups and the messages sent on them, defined once.

* ``DASHBOARD_GROUP``: every open clinician dashboard (triage/consumers/dashboard.py);
* ``user_group(pk)``: the dashboard and listen/talk sockets of one login (access changes);
* ``call_group(session_id)``: the LiveCall of one session, in whichever daphne process holds
  the patient's socket (triage/live.py), so a dashboard action or the beat reaches it from any
  process; a message for a call that is no longer live is simply dropped.

A message's ``type`` names the receiving consumer's handler (``"session.changed"`` ->
``session_changed``). The builders below make these dicts; every sender (the LiveCall in
triage/live.py, the dashboard's actions, the admission line) uses them.
"""

from __future__ import annotations

from typing import Any

DASHBOARD_GROUP = "dashboard"


def call_group(session_id: Any) -> str:
    return f"call.{session_id}"


def user_group(user_pk: Any) -> str:
    return f"dashboard.user.{user_pk}"


# --- to dashboards ------------------------------------------------------------------------------
SESSION_CHANGED = "session.changed"  # re-read one session's row (and its open alerts)
ESCALATION_RAISED = "escalation.raised"  # an alert, pushed before it is stored
QUEUE_CHANGED = "queue.changed"  # the waiting line changed (triage/admission/)
ACCESS_CHANGED = "dashboard.access_changed"  # re-check this login's access (triage/dashboard/access.py)
LAYER_RESTORED = "dashboard.layer_restored"  # the socket's own: back after a channel-layer outage


def session_changed(session_id: Any, event: str) -> dict[str, Any]:
    return {"type": SESSION_CHANGED, "session_id": str(session_id), "event": event}


def escalation_raised(
    session_id: Any,
    *,
    turn_id: int | None,
    level: int | None,
    disposition: str,
    rule_ids: list[str],
    reasons: list[dict[str, Any]],
    on_partial: bool,
    raised_mono: float,
    raised_wall: float,
    host: str,
    kind: str | None = None,
) -> dict[str, Any]:
    """An alert for the dashboards: the rules' escalation, or with ``kind="safety_net"`` a
    possible red flag the rules did not fire on (no turn, no level of its own)."""
    return (
        {"type": ESCALATION_RAISED}
        | ({"kind": kind} if kind is not None else {})
        | {
            "session_id": str(session_id),
            "turn_id": turn_id,
            "level": level,
            "disposition": disposition,
            "rule_ids": rule_ids,
            "reasons": reasons,
            "on_partial": on_partial,
            "raised_mono": raised_mono,
            "raised_wall": raised_wall,
            "host": host,
        }
    )


def queue_changed() -> dict[str, Any]:
    return {"type": QUEUE_CHANGED}


def access_changed(reason: str, session_key: str | None) -> dict[str, Any]:
    return {"type": ACCESS_CHANGED, "reason": reason, "session_key": session_key}


def layer_restored() -> dict[str, Any]:
    return {"type": LAYER_RESTORED}


# --- to a live call -----------------------------------------------------------------------------
TAKE_OVER = "call.take_over"
HAND_BACK = "call.hand_back"
END_CALL = "call.end"
LINK = "call.link"  # a clinician socket on another node asks for the call (triage/call_link.py)


def take_over(clinician: str) -> dict[str, Any]:
    return {"type": TAKE_OVER, "clinician": clinician}


def hand_back(text: str) -> dict[str, Any]:
    return {"type": HAND_BACK, "text": text}


def end_call(reason: str) -> dict[str, Any]:
    return {"type": END_CALL, "reason": reason}


def link(reply_to: str, mode: str, username: str, skip) -> dict[str, Any]:
    return {"type": LINK, "reply_to": reply_to, "mode": mode, "username": username, "skip": sorted(skip)}
