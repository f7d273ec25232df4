"""Patient WebSocket: binary PCM in, events and agent audio out (docs/protocol.md).

Bad input gets a clear error message and the call goes on; only an unknown/expired
token, an ended session or a second socket on a live session are refused.

Faults (docs/architecture.md, Faults): a failure while handling one message is a non-fatal
``internal_error``; whatever ends the consumer (a close, a client drop, an unexpected
exception that makes daphne close with 1011, a cancellation) detaches the call, so the grace
timer starts and a reconnect resumes it. The socket does not use the channel layer (the call
is in this process; its control messages go through LiveCall), so a Redis outage cannot
close it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from clinical_rules import PatientContext
from triage import admission, drain, ownership, services
from triage import protocol as proto
from triage.live import LiveCall
from triage.models import AuditEvent, TriageSession
from triage.node import NODE_ID

logger = logging.getLogger(__name__)


class TokenBucket:
    """Per-connection rate limit: ``rate`` units a second, bursts up to ``capacity``
    (default: one second's worth)."""

    def __init__(self, rate: float, capacity: float | None = None):
        self.rate = rate
        self.capacity = rate if capacity is None else capacity
        self.tokens = self.capacity
        self.last = time.monotonic()

    def take(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


def patient_context(session: TriageSession) -> PatientContext:
    return PatientContext(
        subject=session.subject, age_band=session.age_band or None, pregnant=session.pregnant
    )


# Sessions whose caller waits in the line on a socket of this process (one socket each).
_waiting_here: set[str] = set()


class PatientConsumer(AsyncWebsocketConsumer):
    call: LiveCall | None = None
    # No alias of that name is configured, so channels gives this consumer no channel layer:
    # nothing is ever sent to its channel, and a layer outage must not end the call.
    channel_layer_alias = "patient-socket-uses-no-channel-layer"
    session_id = ""
    waiting: asyncio.Task | None = None  # over the cap: waits in the line, then starts the call
    starting = False  # the waiting task has its slot and is starting the call

    async def __call__(self, scope, receive, send):
        drain.socket_opened()  # a drain waits for open sockets too (their last messages)
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                # disconnect() does not run when the consumer dies of an exception (daphne
                # closes with 1011): detach here too, or every reconnect would be refused (4409).
                await self.stop_waiting()
                await self.release_call("consumer_stopped")
            finally:
                drain.socket_closed()

    async def connect(self):
        self.call = None
        self.limits = settings.TRIAGE
        self.bucket = TokenBucket(self.limits["MAX_MESSAGES_PER_SECOND"])
        audio_rate = proto.INPUT_BYTES_PER_SECOND * proto.MAX_AUDIO_REALTIME_FACTOR
        self.audio_bucket = TokenBucket(audio_rate, audio_rate * proto.AUDIO_BURST_SECONDS)
        self.rate_limited_notified_at = 0.0
        token = self.scope["url_route"]["kwargs"]["token"]
        session = await database_sync_to_async(TriageSession.for_token)(token)
        # Accept first so the client can read why it is refused.
        await self.accept()
        if session is None:
            await self.refuse(
                proto.ErrorCode.SESSION_NOT_FOUND,
                "Unknown or expired session token.",
                proto.CLOSE_SESSION_NOT_FOUND,
            )
            return
        if not session.is_open:
            await self.refuse(
                proto.ErrorCode.SESSION_ENDED, "This session has ended.", proto.CLOSE_SESSION_ENDED
            )
            return
        self.session_id = str(session.pk)
        existing = LiveCall.get(self.session_id)
        if existing is None and drain.draining():
            # Restarting: calls already here go on (reconnects included), new ones go elsewhere.
            await self.refuse(
                proto.ErrorCode.DRAINING,
                "This server is restarting; reconnect to continue.",
                proto.CLOSE_DRAINING,
            )
            return
        if existing is not None:
            await self.start_call(session, existing, None)
            return
        if self.session_id in _waiting_here:
            await self.refuse(
                proto.ErrorCode.SESSION_IN_USE,
                "This session is already waiting for a line on another socket.",
                proto.CLOSE_SESSION_IN_USE,
            )
            return
        moving = await admission.was_started(self.session_id)
        slot = await admission.enter(self.session_id, moving=moving, hint=self.node_hint())
        if slot is None:
            # Over this process's cap: the caller waits in the shared line. A task waits, so that
            # connect returns and this socket's messages and close are handled meanwhile.
            self.waiting = asyncio.ensure_future(self.wait_in_line(session))
            return
        await self.start_call(session, None, slot)

    async def wait_in_line(self, session: TriageSession) -> None:
        """Told their place (and the emergency advice) until a slot frees here, then started."""
        _waiting_here.add(self.session_id)
        try:
            slot = await admission.Waiting(self.session_id, self.send_json, self.send_bytes).run()
        except admission.Draining:
            await self.refuse(
                proto.ErrorCode.DRAINING,
                "This server is restarting; reconnect to continue.",
                proto.CLOSE_DRAINING,
            )
            return
        except admission.Redirect as redirect:
            await self.refuse(
                proto.ErrorCode.LINE_FREE_ELSEWHERE,
                "A line is free on another server; reconnect to it now.",
                proto.CLOSE_LINE_FREE_ELSEWHERE,
                node=redirect.node,
            )
            return
        except Exception:  # never a caller left waiting on a dead task: close, the client retries
            logger.exception("waiting line failed for session %s", self.session_id[:8])
            await self.close(code=1011)
            return
        finally:
            _waiting_here.discard(self.session_id)
        self.starting = True
        await self.start_call(session, None, slot)

    async def stop_waiting(self) -> None:
        """The socket is going: a caller still waiting leaves the line (their ticket is kept for
        a reconnect); a call being started is let finish, so that release_call detaches it."""
        task, self.waiting = self.waiting, None
        if task is None or task.done():
            return
        if not self.starting:
            task.cancel()
        await asyncio.wait([task])

    async def start_call(
        self, session: TriageSession, existing: LiveCall | None, slot: admission.Slot | None
    ) -> None:
        """Start (or reattach to) the call's pipeline and tell the client ``ready``. ``slot``:
        the admission's reservation, held until the new call is registered."""
        try:
            if slot is not None and slot.waited_ms is not None:  # waited in the line on another node
                await self.send_message(proto.Admitted(slot.waited_ms))
            await self._start_call(session, existing)
        finally:
            if slot is not None:
                slot.release()

    async def _start_call(self, session: TriageSession, existing: LiveCall | None) -> None:
        claim = None
        if existing is None and (claim := await self.claim_call()) is None:
            return
        if existing is not None and existing.attached:
            await self.refuse(
                proto.ErrorCode.SESSION_IN_USE,
                "This session is already connected on another socket.",
                proto.CLOSE_SESSION_IN_USE,
            )
            return
        try:
            moved = claim is not None and claim.moved_from is not None
            call = await LiveCall.open(self.session_id, patient_context(session), resume=moved)
        except Exception as exc:  # ModelUnavailable and friends: tell the client, keep the session
            logger.exception("could not start the voice pipeline")
            await database_sync_to_async(services.record_audit)(
                self.session_id,
                AuditEvent.Kind.PIPELINE_ERROR,
                {"stage": "startup", "code": type(exc).__name__},
            )
            await self.refuse(
                proto.ErrorCode.MODELS_UNAVAILABLE,
                "The voice service is not available right now.",
                proto.CLOSE_INTERNAL,
            )
            return
        if call.attached:
            # Another socket attached while the pipeline was starting: it owns the call.
            await self.refuse(
                proto.ErrorCode.SESSION_IN_USE,
                "This session is already connected on another socket.",
                proto.CLOSE_SESSION_IN_USE,
            )
            return
        resumed = call.attach(self.send_json, self.send_bytes)
        if not resumed:
            await ownership.mark_started(self.session_id)
        self.call = call
        await database_sync_to_async(services.record_connection)(
            self.session_id,
            AuditEvent.Kind.SOCKET_RECONNECTED if resumed else AuditEvent.Kind.SOCKET_CONNECTED,
            {},
        )
        await self.send_message(
            proto.Ready.for_call(
                session_id=self.session_id,
                resumed=resumed,
                node=NODE_ID,
                max_frame_bytes=self.limits["MAX_AUDIO_FRAME_BYTES"],
                output_rate=call.voice.config.output_sample_rate,
                state=call.voice.state,
            )
        )
        if not resumed:
            await call.begin()

    async def claim_call(self) -> ownership.Claim | None:
        """Take the call's ownership lease before a pipeline starts here (triage/ownership.py);
        None: refused. A call whose owner died is resumed here (triage/resume.py)."""
        claim = await ownership.claim(self.session_id)
        if not claim.granted:
            await self.refuse(
                proto.ErrorCode.CALL_ELSEWHERE,
                "This call is connected to another server; reconnect.",
                proto.CLOSE_CALL_ELSEWHERE,
                node=ownership.node_of(claim.owner),
                retry_ms=claim.retry_ms,
            )
            return None
        if claim.moved_from is not None:
            moved = {"from": claim.moved_from, "to": ownership.INSTANCE, "resumed": True}
            await database_sync_to_async(services.record_audit)(
                self.session_id, AuditEvent.Kind.CALL_MOVED, moved
            )
        return claim

    async def refuse(
        self, code: str, message: str, close_code: int, node: str | None = None, retry_ms: int | None = None
    ) -> None:
        await self.send_message(proto.Error(code, message, fatal=True, node=node, retry_ms=retry_ms))
        await self.close(code=close_code)

    def node_hint(self) -> str:
        """``?node=`` on the socket's URL: the node this caller was sent to (close 4421, 4422);
        the balancer routes by it (deploy/haproxy.cfg)."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return (query.get("node") or [""])[0][:100]

    async def send_message(self, message: proto.Message) -> None:
        await self.send_json(message.to_dict())

    async def send_json(self, message: dict) -> None:
        """The socket's text transport (LiveCall and the admission line hold it): a message's
        wire form, ``Message.to_dict()``, as JSON."""
        await self.send(text_data=json.dumps(message))

    async def send_bytes(self, data: bytes) -> None:
        await self.send(bytes_data=data)

    async def error(self, exc: proto.ProtocolError) -> None:
        await self.send_message(proto.Error(exc.code, exc.message, fatal=False))

    async def rate_limited(self, what: str) -> None:
        now = time.monotonic()
        if now - self.rate_limited_notified_at > 1.0:  # tell once a second, not per dropped message
            self.rate_limited_notified_at = now
            await self.error(
                proto.ProtocolError(proto.ErrorCode.RATE_LIMITED, f"Too many {what}; some were dropped.")
            )

    async def receive(self, text_data=None, bytes_data=None):
        if self.call is None:
            if self.waiting is not None and text_data:
                await self.while_waiting(text_data)
            return
        try:
            await self.handle(text_data, bytes_data)
        except Exception as exc:
            # One message failed in a way nobody foresaw: the message is lost, the call is not.
            # The type only: the payload may hold patient data.
            logger.warning(
                "patient message failed for session %s: %s", self.session_id[:8], type(exc).__name__
            )
            await self.internal_error()

    async def handle(self, text_data, bytes_data) -> None:
        if not self.bucket.take():
            await self.rate_limited("messages")
            return
        try:
            if bytes_data is not None:
                proto.validate_audio_frame(bytes_data, self.limits["MAX_AUDIO_FRAME_BYTES"])
                if not self.audio_bucket.take(len(bytes_data)):
                    await self.rate_limited("audio frames (faster than real time)")
                    return
                await self.guarded(self.call.feed_audio(bytes_data))
                return
            message = proto.parse_text_message(text_data or "", self.limits["MAX_TEXT_MESSAGE_BYTES"])
        except proto.ProtocolError as exc:
            await self.error(exc)
            return
        match message:
            case proto.Hello():
                await self.send_message(proto.Hello())
            case proto.Ping(t=t):
                await self.send_message(proto.Pong(t))
            case proto.Playback(reply_id=reply_id, played_ms=played_ms):
                await self.guarded(self.call.playback_report(reply_id, played_ms))
            case proto.End():
                call, self.call = self.call, None
                if call is None:
                    return
                await call.end("patient_ended")
                await self.send_message(proto.Ended("patient_ended"))
                await self.close(code=1000)

    async def while_waiting(self, text_data: str) -> None:
        """In the line: ``end`` leaves it (and ends the socket), ``ping`` is answered; audio and
        everything else are dropped until the call starts."""
        try:
            message = proto.parse_text_message(text_data, self.limits["MAX_TEXT_MESSAGE_BYTES"])
        except proto.ProtocolError:
            return
        if isinstance(message, proto.Ping):
            await self.send_message(proto.Pong(message.t))
        elif isinstance(message, proto.End) and not self.starting:
            await self.stop_waiting()
            await self.send_message(proto.Ended("patient_ended"))
            await self.close(code=1000)

    async def guarded(self, work) -> None:
        """Run pipeline input handling; a failure there is reported, not fatal to the socket."""
        try:
            await work
        except Exception as exc:
            logger.warning(
                "pipeline input failed for session %s: %s", self.session_id[:8], type(exc).__name__
            )
            await self.internal_error()

    async def internal_error(self) -> None:
        try:
            await self.send_message(
                proto.Error(proto.ErrorCode.INTERNAL, "The server could not handle that message.")
            )
        except Exception:  # the socket is going away; release_call runs when it has gone
            logger.debug("could not send internal_error", exc_info=True)

    async def disconnect(self, code):
        await self.stop_waiting()
        await self.release_call(code)

    async def release_call(self, code: int | str) -> None:
        """Detach this socket from its call (once): the grace timer starts, the audit records it."""
        call, self.call = self.call, None
        if call is None:
            return
        call.detach()
        try:
            await database_sync_to_async(services.record_connection)(
                self.session_id, AuditEvent.Kind.SOCKET_DISCONNECTED, {"code": code}
            )
        except Exception as exc:  # the call is detached either way; the gap is only unrecorded
            logger.warning(
                "could not record the disconnect of session %s: %s", self.session_id[:8], type(exc).__name__
            )
