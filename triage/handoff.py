"""Clinician voice hand-off (issue 13 parts 2, 3 and 5): hand back, close, a lost clinician.

Take-over itself is ``dashboard.services.take_over`` (one clinician, under a row lock). From
then the clinician's browser talks on ``ws/clinician/calls/<id>/talk/``
(triage/consumers/clinician_audio.py); this module holds what the database and the live call
do when the clinician hands back, closes, or their socket drops, and the audio helpers.

Every step is a ClinicianAction (where a clinician acted) and an audit event, in one
transaction; the live call is told after the commit, over the call's channel group.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
from django.db import transaction
from django.utils import timezone

from . import metrics
from .audit import append_event
from .dashboard import control
from .dashboard import services as dashboard_services
from .dashboard.services import ActionRefused
from .models import AuditEvent, ClinicianAction, TriageSession

logger = logging.getLogger(__name__)

HAND_BACK_TEXT = "Thank you for waiting. The assistant will continue with a few more questions."
# Said when the clinician's connection drops mid-call: never silence (issue 13 part 5).
CLINICIAN_LOST_TEXT = (
    "We have lost the connection to the clinician. The assistant will carry on with you now. "
    "If you feel worse, or have chest pain, trouble breathing, or signs of a stroke, "
    "call your local emergency number straight away."
)
DISPOSITION_RE = re.compile(r"^[a-z0-9_]{2,64}$")
# A clinician's talk socket that drops (a network blip, a reloaded page) has this long to come
# back and carry on before the call returns to the agent with CLINICIAN_LOST_TEXT: long enough
# for the page's reconnect, short enough that the patient is not left in silence.
CLINICIAN_RECONNECT_GRACE_SECONDS = float(os.environ.get("TRIAGE_CLINICIAN_RECONNECT_GRACE_SECONDS", "5"))


def _held_by(session: TriageSession, user) -> None:
    if not session.is_open:
        raise ActionRefused("This call has ended.")
    if session.taken_over_by_id != user.pk:
        holder = session.taken_over_by.get_username() if session.taken_over_by_id else None
        raise ActionRefused(f"{holder} has this call." if holder else "Take over the call first.", status=409)


def _status_after_hand_back(session: TriageSession) -> str:
    level = session.urgency_level
    return TriageSession.Status.ESCALATED if level is not None and level <= 2 else TriageSession.Status.ACTIVE


def _locked(session_id) -> TriageSession | None:
    """The session row, locked for this transaction, with its holder; None if there is none."""
    return (
        TriageSession.objects.select_for_update(of=("self",))
        .select_related("taken_over_by")
        .filter(pk=session_id)
        .first()
    )


def _locked_held_by(session_id, user) -> TriageSession:
    """The locked session, refused unless it exists, is open and ``user`` holds it."""
    session = _locked(session_id)
    if session is None:
        raise ActionRefused("No such session.", status=404)
    _held_by(session, user)
    return session


def _return_to_agent(session: TriageSession) -> None:
    """The clinician no longer holds the call: the agent has it again."""
    session.status = _status_after_hand_back(session)
    session.taken_over_by = None
    session.save(update_fields=["status", "taken_over_by", "updated_at"])


def hand_back(session_id, user, note: str = "") -> TriageSession:
    """The clinician returns the call to the agent: the interview resumes from the facts as they
    stand (the rules kept listening throughout)."""
    with transaction.atomic():
        session = _locked_held_by(session_id, user)
        now = timezone.now()
        held_s = round((now - session.taken_over_at).total_seconds(), 1) if session.taken_over_at else None
        _return_to_agent(session)
        ClinicianAction.objects.create(
            session=session, clinician=user, kind=ClinicianAction.Kind.HAND_BACK, reason=note, at=now
        )
        append_event(
            session.pk,
            AuditEvent.Kind.CLINICIAN_HANDED_BACK,
            {"by": user.get_username(), "held_seconds": held_s, "note": note, "spoken": HAND_BACK_TEXT},
            actor=dashboard_services.actor(user),
        )
        transaction.on_commit(lambda: control.request_hand_back(session.pk, HAND_BACK_TEXT))
        dashboard_services._after_commit(session.pk, "HandBack")
    metrics.CLINICIAN_ACTIONS.labels(kind="hand_back").inc()
    return session


def close_call(session_id, user, disposition: str, note: str) -> TriageSession:
    """The clinician ends the call with a disposition and a note. An urgency override made
    earlier keeps its level and reason (its own ClinicianAction and audit event)."""
    disposition = (disposition or "").strip()
    note = (note or "").strip()
    if not DISPOSITION_RE.match(disposition):
        raise ActionRefused(
            "A disposition is required (lower-case words joined by _, e.g. emergency_department).",
            status=400,
        )
    if not note:
        raise ActionRefused("A note is required to close a call.", status=400)
    with transaction.atomic():
        session = _locked_held_by(session_id, user)
        now = timezone.now()
        previous = session.disposition
        session.disposition = disposition
        session.status = TriageSession.Status.ENDED
        session.ended_at = now
        session.end_reason = "closed_by_clinician"
        session.save(update_fields=["disposition", "status", "ended_at", "end_reason", "updated_at"])
        ClinicianAction.objects.create(
            session=session,
            clinician=user,
            kind=ClinicianAction.Kind.CLOSE,
            reason=note,
            payload={"disposition": disposition, "previous_disposition": previous},
            at=now,
        )
        append_event(
            session.pk,
            AuditEvent.Kind.CLINICIAN_CLOSED_CALL,
            {
                "by": user.get_username(),
                "disposition": disposition,
                "previous_disposition": previous,
                "note": note,
                "urgency_level": session.urgency_level,
                "urgency_overridden": session.urgency_overridden,
            },
            actor=dashboard_services.actor(user),
        )
        transaction.on_commit(lambda: control.request_end(session.pk, "closed_by_clinician"))
        dashboard_services._after_commit(session.pk, "ClosedByClinician")
    metrics.CLINICIAN_ACTIONS.labels(kind="close").inc()
    return session


def holds(session_id, username: str) -> bool:
    """Whether ``username`` holds this open call now (no hand back, no close since)."""
    session = TriageSession.objects.select_related("taken_over_by").filter(pk=session_id).first()
    return bool(
        session is not None
        and session.is_open
        and session.taken_over_by_id
        and session.taken_over_by.get_username() == username
    )


def clinician_lost(session_id, username: str, seconds: float) -> bool:
    """The clinician's talk socket dropped while they held the call: the call goes back to the
    agent (the live call says CLINICIAN_LOST_TEXT first). Returns False if they no longer held
    it (they had handed back or closed: not a drop)."""
    with transaction.atomic():
        session = _locked(session_id)
        if session is None or not session.is_open or not session.taken_over_by_id:
            return False
        if session.taken_over_by.get_username() != username:
            return False
        _return_to_agent(session)
        append_event(
            session.pk,
            AuditEvent.Kind.CLINICIAN_CONNECTION_LOST,
            {"by": username, "talked_seconds": round(seconds, 1), "spoken": CLINICIAN_LOST_TEXT},
            actor="system",
        )
        dashboard_services._after_commit(session.pk, "ClinicianLost")
    return True


class LinearResampler:
    """Streaming s16le mono resampler (linear interpolation) that carries its phase and last
    sample across chunks, so 20 ms frames join without clicks. Speech-grade, cheap."""

    def __init__(self, source_rate: int, target_rate: int):
        self.step = source_rate / target_rate
        self.pos = 0.0  # next output position, in input samples, relative to ``self.prev``
        self.prev: np.ndarray = np.zeros(1, dtype=np.float32)
        self.identity = source_rate == target_rate

    def __call__(self, pcm: bytes) -> bytes:
        if self.identity or not pcm:
            return pcm
        x = np.concatenate((self.prev, np.frombuffer(pcm, dtype="<i2").astype(np.float32)))
        last = len(x) - 1
        t = np.arange(self.pos, last, self.step)
        out = np.interp(t, np.arange(len(x)), x)
        self.pos = (t[-1] + self.step - last) if len(t) else self.pos - last
        self.prev = x[-1:]
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()
