"""A live call: one VoiceSession plus its clinical interview, outliving a dropped socket.

The socket (PatientConsumer) attaches and detaches; the call keeps its state for a grace
period so a reconnect resumes the same conversation. Events from the pipeline go two ways:
straight to the socket (audio never waits for the database) and, in order, to one writer
task that persists them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from voice.pipeline import VoiceSession

from clinical_rules import PatientContext, TriageInterview
from voice import events as ev

from . import services
from .runtime import get_runtime

logger = logging.getLogger(__name__)

RECONNECT_GRACE_SECONDS = 60.0
DASHBOARD_GROUP = "dashboard"

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]

_calls: dict[str, LiveCall] = {}


def audio_frame(reply_id: int, pcm: bytes) -> bytes:
    """Server→client binary frame: uint32 LE reply id, then s16le PCM (docs/protocol.md)."""
    return struct.pack("<I", reply_id) + pcm


def client_message(event: ev.VoiceEvent) -> dict[str, Any] | None:
    """What the patient's page is told about a pipeline event (None: nothing)."""
    match event:
        case ev.StateChanged():
            return {"type": "state", "state": event.current, "previous": event.previous, "cause": event.cause}
        case ev.PartialTranscript():
            return {
                "type": "transcript",
                "final": False,
                "turn_id": event.turn_id,
                "text": event.text,
                "stable": event.stable_text,
                "confidence": round(event.avg_logprob, 3),
            }
        case ev.FinalTranscript():
            return {
                "type": "transcript",
                "final": True,
                "turn_id": event.turn_id,
                "text": event.text,
                "confidence": round(event.avg_logprob, 3),
            }
        case ev.EscalationRaised():
            return {
                "type": "escalation",
                "level": event.level,
                "disposition": event.disposition,
                "script": event.script,
            }
        case ev.AgentReplyStarted():
            return {"type": "agent_reply_start", "reply_id": event.reply_id, "kind": event.kind}
        case ev.AgentText():
            return {
                "type": "agent_text",
                "reply_id": event.reply_id,
                "clause": event.clause_index,
                "text": event.text,
            }
        case ev.AgentReplyFinished():
            return {"type": "agent_reply_end", "reply_id": event.reply_id, "interrupted": event.interrupted}
        case ev.AgentInterrupted():
            return {"type": "interrupt", "reply_id": event.reply_id}
        case ev.PipelineError():
            return {"type": "error", "code": event.code, "message": event.message, "fatal": False}
    return None


class LiveCall:
    def __init__(self, session_id: str, context: PatientContext):
        self.session_id = session_id
        self.interview = TriageInterview(context=context)
        self.voice: VoiceSession | None = None
        self._send_json: SendJson | None = None
        self._send_bytes: SendBytes | None = None
        self._writes: asyncio.Queue[ev.VoiceEvent | None] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._reply_started: dict[int, float] = {}
        self._reply_source: dict[int, str] = {}
        self._played_ms: dict[int, float] = {}
        self._speech_start: dict[int, float] = {}
        # Pipeline timestamps are monotonic; map them to wall-clock for storage.
        self._mono0 = time.monotonic()
        self._wall0 = dt.datetime.now(dt.UTC)
        self.budgets: dict[str, float] = {}
        self.ended = False

    # --- registry ---------------------------------------------------------------------------
    @classmethod
    def get(cls, session_id: str) -> LiveCall | None:
        return _calls.get(session_id)

    @classmethod
    async def open(cls, session_id: str, context: PatientContext) -> LiveCall:
        call = _calls.get(session_id)
        if call is None:
            call = cls(session_id, context)
            _calls[session_id] = call
            await call._start()
        return call

    @property
    def attached(self) -> bool:
        return self._send_json is not None

    def wall(self, t: float) -> dt.datetime:
        return self._wall0 + dt.timedelta(seconds=t - self._mono0)

    async def _start(self) -> None:
        runtime = await get_runtime()
        self.budgets = dict(getattr(runtime.config, "budgets_ms", {}) or {})
        self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.session_id[:8]}")
        self.voice = VoiceSession(runtime, self.interview, self._on_event)

    async def begin(self) -> None:
        assert self.voice is not None
        await self.voice.start()

    # --- socket attachment ------------------------------------------------------------------
    def attach(self, send_json: SendJson, send_bytes: SendBytes) -> bool:
        """Returns True when this resumes a call that had lost its socket."""
        resumed = self._grace is not None
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._send_json, self._send_bytes = send_json, send_bytes
        return resumed

    def detach(self) -> None:
        self._send_json = self._send_bytes = None
        if not self.ended:
            loop = asyncio.get_running_loop()
            self._grace = loop.call_later(
                RECONNECT_GRACE_SECONDS, lambda: asyncio.ensure_future(self.end("connection_lost"))
            )

    # --- inputs ------------------------------------------------------------------------------
    async def feed_audio(self, pcm: bytes) -> None:
        if self.voice is not None and not self.ended:
            await self.voice.feed_audio(pcm)

    async def playback_report(self, reply_id: int, played_ms: float) -> None:
        self._played_ms[reply_id] = played_ms
        if self.voice is not None and not self.ended:
            await self.voice.playback_report(reply_id, played_ms)

    async def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        try:
            if self.voice is not None:
                await self.voice.end(reason)
        finally:
            await self._writes.put(None)
            if self._writer is not None:
                await self._writer
            await database_sync_to_async(services.record_audit)(
                self.session_id, "session_ended", {"reason": reason}
            )
            _calls.pop(self.session_id, None)

    # --- outputs -----------------------------------------------------------------------------
    async def _on_event(self, event: ev.VoiceEvent) -> None:
        if isinstance(event, ev.AgentAudio):
            if self._send_bytes is not None:
                await self._send_bytes(audio_frame(event.reply_id, event.pcm))
            return
        message = client_message(event)
        if message is not None and self._send_json is not None:
            try:
                await self._send_json(message)
            except Exception:  # a socket closing mid-send must not break the pipeline
                logger.debug("send to patient socket failed", exc_info=True)
        if not isinstance(event, ev.SpeechResumed | ev.SpeechPaused):
            self._writes.put_nowait(event)

    async def _write_loop(self) -> None:
        while True:
            event = await self._writes.get()
            if event is None:
                return
            try:
                await database_sync_to_async(self._persist)(event)
                await self._broadcast(event)
            except Exception:
                # Keep the call going; the event is lost from storage only, and that is logged.
                logger.exception(
                    "failed to persist %s for session %s", type(event).__name__, self.session_id[:8]
                )

    def _persist(self, event: ev.VoiceEvent) -> None:
        sid = self.session_id
        match event:
            case ev.StateChanged():
                services.record_state_change(sid, event, self.wall(event.t))
            case ev.SpeechStarted():
                self._speech_start[event.turn_id] = event.t
            case ev.PartialTranscript():
                services.record_partial(sid, event.text)
            case ev.FinalTranscript():
                services.record_patient_turn(
                    sid, event, self.wall(event.speech_start), self.wall(event.speech_end)
                )
            case ev.AssessmentUpdated():
                services.record_assessment(sid, event)
            case ev.EscalationRaised():
                services.record_escalation(sid, event)
            case ev.AgentReplyStarted():
                self._reply_started[event.reply_id] = event.t
            case ev.AgentText():
                # A reply's source is its weakest link: any fallback clause marks it fallback.
                if self._reply_source.get(event.reply_id) != "fallback":
                    self._reply_source[event.reply_id] = event.source
            case ev.AgentReplyFinished():
                started = self._reply_started.pop(event.reply_id, None)
                services.record_agent_turn(
                    sid,
                    event,
                    source="fallback" if event.fallback_used else self._reply_source.pop(event.reply_id, ""),
                    played_ms=self._played_ms.get(event.reply_id),
                    started=self.wall(started) if started is not None else None,
                    ended=self.wall(event.t),
                )
            case ev.TurnMetrics():
                services.record_turn_metrics(sid, event, self.budgets)
            case ev.AgentInterrupted():
                services.record_audit(
                    sid,
                    "barge_in",
                    {
                        "reply_id": event.reply_id,
                        "turn_id": event.turn_id,
                        "stop_ms": round((event.t - event.speech_onset) * 1000, 1),
                    },
                )
            case ev.BudgetMissed():
                services.record_audit(
                    sid,
                    "budget_missed",
                    {
                        "stage": event.stage,
                        "budget_ms": event.budget_ms,
                        "actual_ms": round(event.actual_ms, 1),
                        "turn_id": event.turn_id,
                    },
                )
            case ev.AcousticAnomaly():
                services.record_audit(
                    sid,
                    "acoustic_anomaly",
                    {"kind": event.kind, "value": event.value, "turn_id": event.turn_id},
                )
            case ev.PipelineError():
                services.record_audit(sid, "pipeline_error", {"stage": event.stage, "code": event.code})

    async def _broadcast(self, event: ev.VoiceEvent) -> None:
        """Tell connected clinician dashboards (channel group) what changed."""
        if not isinstance(
            event,
            ev.StateChanged
            | ev.PartialTranscript
            | ev.FinalTranscript
            | ev.EscalationRaised
            | ev.AssessmentUpdated
            | ev.AgentReplyFinished,
        ):
            return
        layer = get_channel_layer()
        if layer is None:
            return
        await layer.group_send(
            DASHBOARD_GROUP,
            {"type": "session.changed", "session_id": self.session_id, "event": type(event).__name__},
        )
