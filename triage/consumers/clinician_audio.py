"""Clinician audio sockets on a live call.

``ws/clinician/calls/<session_id>/listen/``: a clinician listens in.
``ws/clinician/calls/<session_id>/talk/``: the clinician who took the call over talks to the
patient (issue 13 part 2); it also carries everything the listen socket does.

Login with ``triage.view_clinical_dashboard`` required (a patient token is no credential: a
patient has no Django login). The socket gets what the patient says and what the patient hears
(triage/listen.py frames, mixed in the browser) and what the patient's page is told (captions,
state). Nothing from this socket ever reaches the patient: what it receives is ignored.
Start and end are audit events with who and how long.

The call must be held by this process (the one holding the patient's socket): with one web
node always; behind a load balancer with several, the socket is refused with 4409 unless it
lands on the call's node (docs/clinician.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from triage import clinician_speech, handoff, listen, services
from triage.channel_groups import user_group
from triage.dashboard import access
from triage.dashboard.permissions import can_act, can_view
from triage.live import LiveCall
from triage.models import AuditEvent, TriageSession

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_ACCESS_REVOKED = 4401  # as the dashboard socket: the login lost access while open
CLOSE_NOT_LIVE = 4404
CLOSE_OTHER_NODE = 4409


def _open_session(session_id: str) -> bool:
    session = TriageSession.objects.filter(pk=session_id).only("status").first()
    return session is not None and session.is_open


def _holder(session_id: str) -> str | None:
    session = TriageSession.objects.select_related("taken_over_by").filter(pk=session_id).first()
    return session.taken_over_by.get_username() if session and session.taken_over_by_id else None


class ListenConsumer(AsyncWebsocketConsumer):
    listener: listen.Listener | None = None
    access_group: str | None = None
    skip_sources: frozenset[int] = frozenset()

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
        if self.listener is None:
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
        call = await self._live_call()
        if call is None:
            return
        self.username = user.get_username()
        self.started = time.monotonic()
        voice = call.voice
        agent_rate = int(voice.config.output_sample_rate) if voice is not None else 0
        await self._start(
            user,
            {
                "type": "listen_ready",
                "session_id": self.session_id,
                "patient_rate": listen.PATIENT_RATE,
                "agent_rate": agent_rate,
            },
            AuditEvent.Kind.CLINICIAN_LISTEN_STARTED,
        )

    async def _admit(self, permission, forbidden: str):
        """Accept the socket, then refuse it (and return None) unless the login has
        ``permission`` and the call is open; else return the user."""
        self.listener = None
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

    async def _live_call(self) -> LiveCall | None:
        """The call held by this process, or None after refusing the socket with 4409."""
        call = LiveCall.get(self.session_id)
        if call is None or call.ended:
            await self._refuse(
                CLOSE_OTHER_NODE, "other_node", "This call is held by another server: open it there."
            )
            return None
        return call

    async def _start(self, user, ready: dict, audit_kind: AuditEvent.Kind) -> None:
        """Follow the login's access, tap the call, tell the page ``ready``, audit the start and
        start forwarding."""
        await self._follow_access(user)
        self.listener = listen.add(self.session_id, self.skip_sources)
        await self.send(text_data=json.dumps(ready))
        await database_sync_to_async(services.record_audit)(
            self.session_id, audit_kind, {"by": self.username}, actor=self._actor()
        )
        self._sender = asyncio.create_task(self._send_loop(self.listener))

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
        listener, self.listener = self.listener, None
        if listener is None:
            return
        listen.remove(listener)
        if self.access_group is not None:
            try:
                await self.channel_layer.group_discard(self.access_group, self.channel_name)
            except Exception:  # the membership expires on its own
                logger.debug("group_discard failed", exc_info=True)
        if self._sender is not None:
            self._sender.cancel()
        seconds = round(time.monotonic() - self.started, 1)
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                AuditEvent.Kind.CLINICIAN_LISTEN_ENDED,
                {"by": self.username, "seconds": seconds, "frames_dropped": listener.dropped},
                actor=self._actor(),
            )
        except Exception:
            logger.exception("could not audit the end of listening to session %s", self.session_id[:8])


TALK_FRAME_MAX_BYTES = 16000 * 2  # at most 1 s of 16 kHz s16le per message
TAKE_OVER_WAIT_S = 5.0  # the take-over reaches the call over the channel layer, after the POST
NOTICE_WAIT_MAX_S = 15.0
NOTICE_MARGIN_S = 0.15  # the notice's last frames still in the patient's network path and buffer


class TalkConsumer(ListenConsumer):
    """Two-way audio for the clinician holding the call (``dashboard.services.take_over``).

    Their 16 kHz microphone frames are resampled to the patient's playback rate and sent to
    the patient's socket; the patient's voice comes back as on the listen socket. Their words
    are transcribed as clinician turns. If this socket drops while they still hold the call,
    they have ``handoff.CLINICIAN_RECONNECT_GRACE_SECONDS`` to come back (the page reconnects by
    itself): a talk socket in that time carries on where they were, and the patient hears
    nothing odd. After it the call goes back to the agent with a fixed message
    (triage/handoff.py), never silence."""

    reply_id: int | None = None
    # Their own voice is not sent back to them (heard ~100 ms late it would be an echo).
    skip_sources = frozenset({listen.CLINICIAN})

    async def connect(self):
        user = await self._admit(can_act, "A clinician login that may act is required.")
        if user is None:
            return
        holder = await database_sync_to_async(_holder)(self.session_id)
        if holder != user.get_username():
            message = f"{holder} has this call." if holder else "Take over the call first."
            await self._refuse(CLOSE_OTHER_NODE, "held_by" if holder else "not_taken_over", message)
            return
        call = await self._live_call()
        if call is None:
            return
        deadline = time.monotonic() + TAKE_OVER_WAIT_S
        while call.taken_over_by is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        attached = await call.clinician_attach()  # back within the grace: the same voice goes on
        if attached is None:
            await self._refuse(CLOSE_NOT_LIVE, "not_taken_over", "The call did not hand over; try again.")
            return
        self.reply_id, resumed = attached
        # The patient is still hearing the take-over notice: the clinician's voice starts when it
        # ends (frames before talk_ready are ignored), else it would queue behind the notice in
        # the patient's playback and stay that much late (measured: ~380 ms) for the whole call.
        notice_left = min(NOTICE_WAIT_MAX_S, call.host_audio_until + NOTICE_MARGIN_S - time.monotonic())
        if notice_left > 0:
            await asyncio.sleep(notice_left)
        self.call = call
        self.username = user.get_username()
        self.started = time.monotonic()
        voice = call.voice
        agent_rate = int(voice.config.output_sample_rate) if voice is not None else listen.PATIENT_RATE
        self.resample = handoff.LinearResampler(clinician_speech.RATE, agent_rate)
        recognizer = getattr(getattr(voice, "runtime", None), "recognizer", None)
        self.transcriber = None
        if recognizer is not None:
            self.transcriber = clinician_speech.ClinicianTranscriber(
                lambda audio: recognizer.transcribe(audio).text, self._clinician_said
            )
        await self._start(
            user,
            {
                "type": "talk_ready",
                "session_id": self.session_id,
                "patient_rate": listen.PATIENT_RATE,
                "agent_rate": agent_rate,
                "capture_rate": clinician_speech.RATE,
                "transcribed": self.transcriber is not None,
                "resumed": resumed,
                "reconnect_grace_s": handoff.CLINICIAN_RECONNECT_GRACE_SECONDS,
            },
            AuditEvent.Kind.CLINICIAN_VOICE_RESUMED if resumed else AuditEvent.Kind.CLINICIAN_VOICE_STARTED,
        )

    def _lost(self, seconds: float):
        """The lost-clinician fallback for this socket's clinician (run after the grace)."""
        call, session_id, username = self.call, self.session_id, self.username

        async def lost() -> None:
            if await database_sync_to_async(handoff.clinician_lost)(session_id, username, seconds):
                await call.hand_back(handoff.CLINICIAN_LOST_TEXT)

        return lost

    async def _clinician_said(self, text: str, started, ended) -> None:
        await database_sync_to_async(clinician_speech.record_clinician_turn)(
            self.session_id, text, self.username, started, ended, clinician_speech.new_key(self.session_id)
        )
        await self.call.clinician_said(text, self.username)

    async def receive(self, text_data=None, bytes_data=None):
        if self.listener is None or not bytes_data:
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
        if self.transcriber is not None:
            self.transcriber.feed(bytes_data)
        await self.call.clinician_audio(self.reply_id, self.resample(bytes_data))

    async def disconnect(self, code):
        listener = self.listener
        if listener is None:
            return
        seconds = time.monotonic() - self.started
        grace = handoff.CLINICIAN_RECONNECT_GRACE_SECONDS
        waiting = False
        try:
            if self.transcriber is not None:
                await self.transcriber.close()
            if self.call.clinician_detach():  # the last talk socket (not one overtaken by its reconnect)
                # Still holding the call (no hand back, no close): the connection dropped. Wait
                # for the page to reconnect; after the grace the clinician is lost.
                holds = await database_sync_to_async(handoff.holds)(self.session_id, self.username)
                if code == CLOSE_ACCESS_REVOKED:
                    grace = 0.0
                waiting = holds and grace > 0 and not self.call.ended
                await self.call.clinician_gone(holds, grace, self._lost(seconds))
        except Exception:
            logger.exception("clinician voice teardown failed for session %s", self.session_id[:8])
        await super().disconnect(code)
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                AuditEvent.Kind.CLINICIAN_VOICE_ENDED,
                {"by": self.username, "seconds": round(seconds, 1)}
                | ({"reconnect_grace_s": grace} if waiting else {}),
                actor=self._actor(),
            )
        except Exception:
            logger.exception("could not audit the end of the clinician's voice on %s", self.session_id[:8])
