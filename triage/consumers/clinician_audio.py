"""Clinician audio sockets on a live call.

``ws/clinician/calls/<session_id>/listen/``: a clinician listens in.
``ws/clinician/calls/<session_id>/talk/``: the clinician who took the call over talks to the
patient (issue 13 part 2); it also carries everything the listen socket does.

Login with ``triage.view_clinical_dashboard`` required (a patient token is no credential: a
patient has no Django login). The socket gets what the patient says and what the patient hears
(triage/listen.py frames, mixed in the browser) and what the patient's page is told (captions,
state). Nothing from this socket ever reaches the patient: what it receives is ignored.
Start and end are audit events with who and how long.

The call may be on another node behind the load balancer: the socket then reaches it through
the channel layer (triage/call_link.py), with the same messages, audits and fallbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from triage import call_link, clinician_speech, handoff, listen, services
from triage.channel_groups import user_group
from triage.clinician_voice import CLOSE_ACCESS_REVOKED, Refusal
from triage.dashboard import access
from triage.dashboard.permissions import can_act, can_view
from triage.models import AuditEvent, TriageSession

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_LIVE = 4404
CLOSE_HELD = 4409
CLOSE_LINK_LOST = 1011  # the call's node stopped answering: the page reconnects


def _open_session(session_id: str) -> bool:
    session = TriageSession.objects.filter(pk=session_id).only("status").first()
    return session is not None and session.is_open


def _holder(session_id: str) -> str | None:
    session = TriageSession.objects.select_related("taken_over_by").filter(pk=session_id).first()
    return session.taken_over_by.get_username() if session and session.taken_over_by_id else None


class ListenConsumer(AsyncWebsocketConsumer):
    link: call_link.LocalLink | call_link.RemoteLink | None = None
    access_group: str | None = None
    skip_sources: frozenset[int] = frozenset()
    mode = call_link.LISTEN

    async def _follow_access(self, user) -> None:
        """Join the user's access group (triage/dashboard/access.py): a logout, deactivation or
        lost permission closes this socket with 4401, as it closes the dashboard's."""
        self.user_pk = user.pk
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        try:
            await self.channel_layer.group_add(user_group(user.pk), self.channel_name)
            self.access_group = user_group(user.pk)
        except Exception:  # Redis down: the next connect re-checks; this socket keeps its access
            logger.warning("listen socket could not follow access changes", exc_info=True)

    async def dashboard_access_changed(self, message: dict) -> None:
        if self.link is None:
            return
        if message.get("session_key") and message["session_key"] == self.session_key:
            reason = access.SIGNED_OUT
        else:
            reason = await database_sync_to_async(access.access_lost)(self.session_key, self.user_pk)
        if reason is None:
            return
        await self.send(
            text_data=json.dumps(
                {
                    "type": "error",
                    "code": "access_revoked",
                    "reason": reason,
                    "message": "Your access has ended.",
                }
            )
        )
        await self.close(code=CLOSE_ACCESS_REVOKED)
        await self.disconnect(CLOSE_ACCESS_REVOKED)  # stop listening now, not when the browser answers

    async def connect(self):
        user = await self._admit(can_view, "Clinician login required.")
        if user is None:
            return
        link = await self._link(user)
        if link is None:
            return
        await self._start(
            user,
            link,
            {
                "type": "listen_ready",
                "session_id": self.session_id,
                "patient_rate": listen.PATIENT_RATE,
                "agent_rate": link.info["agent_rate"],
            },
            AuditEvent.Kind.CLINICIAN_LISTEN_STARTED,
        )

    async def _admit(self, permission, forbidden: str):
        """Accept the socket, then refuse it (and return None) unless the login has
        ``permission`` and the call is open; else return the user."""
        self.link = None
        self._sender: asyncio.Task | None = None
        self.session_id = str(self.scope["url_route"]["kwargs"]["session_id"])
        user = self.scope.get("user")
        allowed = await database_sync_to_async(permission)(user)
        # Accept first so the page can read why it is refused (a 44xx close, not a bare 403).
        await self.accept()
        if not allowed:
            await self._refuse(CLOSE_FORBIDDEN, "forbidden", forbidden)
            return None
        if not await database_sync_to_async(_open_session)(self.session_id):
            await self._refuse(CLOSE_NOT_LIVE, "not_live", "This call is not live.")
            return None
        return user

    async def _link(self, user):
        """The link to the live call, on this node or relayed from its own; None after refusing
        the socket."""
        self.username = user.get_username()
        link = await call_link.open_link(self.session_id, self.mode, self.username, self.skip_sources)
        if isinstance(link, Refusal):
            await self._refuse(link.code, link.error, link.message)
            return None
        return link

    async def _start(self, user, link, ready: dict, audit_kind: AuditEvent.Kind) -> None:
        """Follow the login's access, tell the page ``ready``, audit the start and start
        forwarding what the call's tap gives."""
        self.started = time.monotonic()
        await self._follow_access(user)
        self.link = link
        await self.send(text_data=json.dumps(ready))
        await database_sync_to_async(services.record_audit)(
            self.session_id, audit_kind, {"by": self.username}, actor=self._actor()
        )
        self._sender = asyncio.create_task(self._send_loop(link.listener))

    def _actor(self) -> str:
        return f"clinician:{self.username}"

    async def _refuse(self, code: int, error: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": error, "message": message}))
        await self.close(code=code)

    async def _send_loop(self, listener: listen.Listener) -> None:
        try:
            while True:
                item = await listener.queue.get()
                if item is None:
                    await self.send(text_data=json.dumps({"type": "call_ended"}))
                    await self.close(code=1000)
                    return
                if item is call_link.LINK_LOST:
                    await self.close(code=CLOSE_LINK_LOST)
                    return
                if isinstance(item, listen.TapAudio):
                    await self.send(bytes_data=item.frame())
                else:
                    await self.send(text_data=json.dumps({"type": "call_event", "event": item.message}))
        except asyncio.CancelledError:
            raise
        except Exception:  # the socket went away mid-send: disconnect() tidies up
            logger.debug("listen socket send failed", exc_info=True)

    async def receive(self, text_data=None, bytes_data=None):
        """Listen-only: nothing a listener sends goes anywhere (the patient hears nothing)."""

    async def disconnect(self, code):
        link, self.link = self.link, None
        if link is None:
            return
        if self._sender is not None:
            self._sender.cancel()
        seconds = round(time.monotonic() - self.started, 1)
        closed = call_link.Closed(None, link.listener.dropped)
        try:
            # First: a login that lost access gets nothing more. Talk: the clinician's voice
            # ends on the call's node (their last words are transcribed first).
            closed = await link.close(code)
        except Exception:
            logger.exception("clinician socket teardown failed for session %s", self.session_id[:8])
        if self.access_group is not None:
            try:
                await self.channel_layer.group_discard(self.access_group, self.channel_name)
            except Exception:  # the membership expires on its own
                logger.debug("group_discard failed", exc_info=True)
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                AuditEvent.Kind.CLINICIAN_LISTEN_ENDED,
                {"by": self.username, "seconds": seconds, "frames_dropped": closed.dropped},
                actor=self._actor(),
            )
        except Exception:
            logger.exception("could not audit the end of listening to session %s", self.session_id[:8])
        await self._ended(seconds, closed)

    async def _ended(self, seconds: float, closed: call_link.Closed) -> None:
        """After the link closed and the listening was audited (the talk socket audits its voice)."""


TALK_FRAME_MAX_BYTES = 16000 * 2  # at most 1 s of 16 kHz s16le per message


class TalkConsumer(ListenConsumer):
    """Two-way audio for the clinician holding the call (``dashboard.services.take_over``).

    Their 16 kHz microphone frames go to the call's ``ClinicianVoice`` (triage/clinician_voice.py,
    on the call's node), which plays them to the patient and transcribes them as clinician turns;
    the patient's voice comes back as on the listen socket. If this socket drops while they still
    hold the call, they have ``handoff.CLINICIAN_RECONNECT_GRACE_SECONDS`` to come back (the page
    reconnects by itself): a talk socket in that time carries on where they were, and the patient
    hears nothing odd. After it the call goes back to the agent with a fixed message
    (triage/handoff.py), never silence."""

    # Their own voice is not sent back to them (heard ~100 ms late it would be an echo).
    skip_sources = frozenset({listen.CLINICIAN})
    mode = call_link.TALK

    async def connect(self):
        user = await self._admit(can_act, "A clinician login that may act is required.")
        if user is None:
            return
        holder = await database_sync_to_async(_holder)(self.session_id)
        if holder != user.get_username():
            message = f"{holder} has this call." if holder else "Take over the call first."
            await self._refuse(CLOSE_HELD, "held_by" if holder else "not_taken_over", message)
            return
        link = await self._link(user)
        if link is None:
            return
        await self._start(
            user,
            link,
            {
                "type": "talk_ready",
                "session_id": self.session_id,
                "patient_rate": listen.PATIENT_RATE,
                "agent_rate": link.info["agent_rate"],
                "capture_rate": clinician_speech.RATE,
                "transcribed": link.info["transcribed"],
                "resumed": link.info["resumed"],
                "reconnect_grace_s": handoff.CLINICIAN_RECONNECT_GRACE_SECONDS,
            },
            AuditEvent.Kind.CLINICIAN_VOICE_RESUMED
            if link.info["resumed"]
            else AuditEvent.Kind.CLINICIAN_VOICE_STARTED,
        )

    async def receive(self, text_data=None, bytes_data=None):
        if self.link is None or not bytes_data:
            return
        if len(bytes_data) % 2 or len(bytes_data) > TALK_FRAME_MAX_BYTES:
            await self.send(
                text_data=json.dumps(
                    {
                        "type": "error",
                        "code": "bad_audio",
                        "message": "Audio frames are 16 kHz s16le, at most 1 s.",
                    }
                )
            )
            return
        await self.link.audio(bytes_data)

    async def _ended(self, seconds: float, closed: call_link.Closed) -> None:
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                AuditEvent.Kind.CLINICIAN_VOICE_ENDED,
                {"by": self.username, "seconds": seconds}
                | ({"reconnect_grace_s": closed.grace} if closed.grace is not None else {}),
                actor=self._actor(),
            )
        except Exception:
            logger.exception("could not audit the end of the clinician's voice on %s", self.session_id[:8])
