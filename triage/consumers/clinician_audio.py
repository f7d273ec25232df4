"""``ws/clinician/calls/<session_id>/listen/``: a clinician listens in to a live call.

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

from triage import listen, services
from triage.dashboard.permissions import can_view
from triage.live import LiveCall
from triage.models import TriageSession

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
CLOSE_NOT_LIVE = 4404
CLOSE_OTHER_NODE = 4409


def _open_session(session_id: str) -> bool:
    session = TriageSession.objects.filter(pk=session_id).only("status").first()
    return session is not None and session.is_open


class ListenConsumer(AsyncWebsocketConsumer):
    listener: listen.Listener | None = None

    async def connect(self):
        self.listener = None
        self._sender: asyncio.Task | None = None
        self.session_id = str(self.scope["url_route"]["kwargs"]["session_id"])
        user = self.scope.get("user")
        allowed = await database_sync_to_async(can_view)(user)
        # Accept first so the page can read why it is refused (a 44xx close, not a bare 403).
        await self.accept()
        if not allowed:
            await self._refuse(CLOSE_FORBIDDEN, "forbidden", "Clinician login required.")
            return
        if not await database_sync_to_async(_open_session)(self.session_id):
            await self._refuse(CLOSE_NOT_LIVE, "not_live", "This call is not live.")
            return
        call = LiveCall.get(self.session_id)
        if call is None or call.ended:
            await self._refuse(
                CLOSE_OTHER_NODE, "other_node", "This call is held by another server: open it there."
            )
            return
        self.username = user.get_username()
        self.started = time.monotonic()
        self.listener = listen.add(self.session_id)
        voice = call.voice
        agent_rate = int(voice.config.output_sample_rate) if voice is not None else 0
        await self.send(
            text_data=json.dumps(
                {
                    "type": "listen_ready",
                    "session_id": self.session_id,
                    "patient_rate": listen.PATIENT_RATE,
                    "agent_rate": agent_rate,
                }
            )
        )
        await database_sync_to_async(services.record_audit)(
            self.session_id, "clinician_listen_started", {"by": self.username}, actor=self._actor()
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
        if self._sender is not None:
            self._sender.cancel()
        seconds = round(time.monotonic() - self.started, 1)
        try:
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                "clinician_listen_ended",
                {"by": self.username, "seconds": seconds, "frames_dropped": listener.dropped},
                actor=self._actor(),
            )
        except Exception:
            logger.exception("could not audit the end of listening to session %s", self.session_id[:8])
