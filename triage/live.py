"""A live call: one VoiceSession plus its clinical interview, outliving a dropped socket.

The socket (PatientConsumer) attaches and detaches; the call keeps its state for a grace
period so a reconnect resumes the same conversation. Events from the pipeline go two ways:
straight to the socket (audio never waits for the database) and, in order, to one writer
task that persists them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError

from clinical_rules import PatientContext, TriageInterview
from voice import events as ev
from voice.affect import AffectObserved
from voice.pipeline import VoiceSession
from voice.safety_net_runner import SafetyNetRunner

from . import affect as affect_host
from . import call_link, channel_outage, listen, metrics, services
from . import channel_groups as groups
from . import protocol as proto
from . import resume as resume_call
from .dashboard.control import TAKE_OVER_TEXT
from .runtime import get_runtime

logger = logging.getLogger(__name__)

RECONNECT_GRACE_SECONDS = 60.0
# The writer's patience with an unreachable database (a restart takes seconds, a failover
# tens of seconds): events wait in order meanwhile; after this they are logged as not stored.
DB_RETRY_SECONDS = 120.0
DB_RETRY_FIRST_SECONDS = 0.2
DB_RETRY_MAX_DELAY_SECONDS = 2.0
HOST = socket.gethostname()
# Reply ids of the clinician's voice to the patient (host I/O), clear of the pipeline's.
HOST_REPLY_IDS = 0xFFFF0000

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]

_calls: dict[str, LiveCall] = {}


def active_call_count() -> int:
    """Calls this process holds, detached ones in their grace period and ending ones (still
    storing their last turns) included."""
    return len(_calls)


def audio_frame(reply_id: int, pcm: bytes) -> bytes:
    """Server→client binary frame: uint32 LE reply id, then s16le PCM (docs/protocol.md)."""
    return struct.pack("<I", reply_id) + pcm


def client_message(event: ev.VoiceEvent) -> proto.Message | None:
    """What the patient's page is told about a pipeline event (None: nothing)."""
    match event:
        case ev.StateChanged():
            return proto.State(state=event.current, previous=event.previous, cause=event.cause)
        case ev.PartialTranscript() | ev.FinalTranscript():
            partial = isinstance(event, ev.PartialTranscript)
            return proto.Transcript(
                final=not partial,
                turn_id=event.turn_id,
                text=event.text,
                stable=event.stable_text if partial else None,
                confidence=round(event.avg_logprob, 3),
            )
        case ev.EscalationRaised():
            return proto.Escalation(level=event.level, disposition=event.disposition, script=event.script)
        case ev.AgentReplyStarted():
            return proto.AgentReplyStart(reply_id=event.reply_id, kind=event.kind)
        case ev.AgentText():
            return proto.AgentText(
                reply_id=event.reply_id, clause=event.clause_index, text=event.text, answer=event.answer
            )
        case ev.AgentReplyFinished():
            return proto.AgentReplyEnd(reply_id=event.reply_id, interrupted=event.interrupted)
        case ev.AgentInterrupted():
            return proto.Interrupt(reply_id=event.reply_id)
        case ev.AgentPaused():
            return proto.Pause(reply_id=event.reply_id)
        case ev.AgentResumed():
            return proto.Resume(reply_id=event.reply_id)
        case ev.PipelineError():
            return proto.Error(code=event.code, message=event.message, fatal=False)
    return None


class LiveCall:
    def __init__(self, session_id: str, context: PatientContext):
        self.session_id = session_id
        self.interview = TriageInterview(context=context)
        # Semantic safety net: raises clinician attention only, never a level (docs/clinical-rules.md).
        self.safety_net = SafetyNetRunner(self.interview, self._on_safety_net_hit)
        self.voice: VoiceSession | None = None
        self._send_json: SendJson | None = None
        self._send_bytes: SendBytes | None = None
        self._writes: asyncio.Queue[ev.VoiceEvent | None] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._reply_started: dict[int, float] = {}
        self._reply_source: dict[int, str] = {}
        self._speech_start: dict[int, float] = {}
        # Pipeline timestamps are monotonic; map them to wall-clock for storage.
        self._mono0 = time.monotonic()
        self._wall0 = dt.datetime.now(dt.UTC)
        self.budgets: dict[str, float] = {}
        self.ended = False
        self._abandoned = False  # another node took the call's lease: nothing more from here
        # Once the rules escalated this call, a "rules did not fire" safety-net alert would be false.
        self._escalation_seen = False
        # Clinician take-over (see take_over): who holds the call.
        self.taken_over_by: str | None = None
        self._host_reply_ids = itertools.count(HOST_REPLY_IDS)
        # The clinician's voice to the patient: one host reply, kept open across a talk socket
        # that drops and comes back within the grace (clinician_attach / clinician_gone).
        self._clinician_reply: int | None = None
        self._clinician_open: set[int] = set()  # clinician replies started and not yet ended
        self._clinician_sockets = 0  # talk sockets attached (a reconnect may come before the drop)
        self._clinician_grace: asyncio.TimerHandle | None = None
        self._control: asyncio.Task | None = None
        self.reachable = asyncio.Event()  # set once the call listens on its group (any node reaches it)
        self._tasks: set[asyncio.Task] = set()
        self.id_offset = 0  # resumed calls: added to stored turn/reply ids (_stored_ids)

    # --- registry ---------------------------------------------------------------------------
    @classmethod
    def get(cls, session_id: str) -> LiveCall | None:
        return _calls.get(session_id)

    @classmethod
    async def open(cls, session_id: str, context: PatientContext, *, resume: bool = False) -> LiveCall:
        """``resume``: the call ran on a node that died; continue it from what is stored."""
        call = _calls.get(session_id)
        if call is None:
            call = cls(session_id, context)
            _calls[session_id] = call
            # A reconnect while this start is still loading models waits for the same start.
            call._starting = asyncio.ensure_future(call._start(resume))
        starting = getattr(call, "_starting", None)
        if starting is not None:
            try:
                await asyncio.shield(starting)
            except Exception:
                if _calls.get(session_id) is call:  # a failed start must not block later tries
                    _calls.pop(session_id)
                raise
        return call

    @property
    def attached(self) -> bool:
        return self._send_json is not None

    @property
    def host_audio_until(self) -> float:
        """When the patient will have heard the agent's audio sent so far (the take-over notice
        among it): the clinician's voice must not queue behind it, or it stays that late for
        the whole call."""
        return self.voice.playback_ends_at if self.voice is not None else 0.0

    def wall(self, t: float) -> dt.datetime:
        return self._wall0 + dt.timedelta(seconds=t - self._mono0)

    async def _start(self, resume: bool = False) -> None:
        runtime = await get_runtime()
        self.budgets = dict(getattr(runtime.config, "budgets_ms", {}) or {})
        restored = []  # the caller's affect baseline turns, measured on the node that died
        if resume:
            point = await database_sync_to_async(resume_call.load_resume_point)(self.session_id)
            restored = affect_host.baseline_features(point.affect_baseline)
            opening = await asyncio.to_thread(resume_call.replay, self.interview, point)
            self.id_offset = point.generation * resume_call.ID_STRIDE
            # The pipeline greets with policy.opening(): here, "sorry, we were cut off" + the
            # pending question. An instance attribute, so the interview class stays untouched.
            self.interview.opening = lambda: opening
        self.start_recording()
        self.voice = VoiceSession(runtime, self.interview, self._on_event)
        if restored:
            self.voice.affect.tracker.restore(restored)
        self.voice.set_output_connected(self.attached)

    def start_recording(self) -> None:
        """Start the ordered writer task and the control listener (group ``call.<id>``)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.session_id[:8]}")
        if self._control is None:
            self._control = asyncio.create_task(self._listen_control(), name=f"control-{self.session_id[:8]}")

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
        if self.voice is not None:
            self.voice.set_output_connected(True)
        return resumed

    def detach(self) -> None:
        self._send_json = self._send_bytes = None
        if self.voice is not None:
            self.voice.set_output_connected(False)
        if not self.ended:
            loop = asyncio.get_running_loop()
            self._grace = loop.call_later(
                RECONNECT_GRACE_SECONDS, lambda: asyncio.ensure_future(self.end("connection_lost"))
            )

    # --- inputs ------------------------------------------------------------------------------
    async def feed_audio(self, pcm: bytes) -> None:
        listen.patient_audio(self.session_id, pcm)  # clinicians listening in (triage/listen.py)
        if self.voice is not None and not self.ended:
            await self.voice.feed_audio(pcm)

    async def playback_report(self, reply_id: int, played_ms: float) -> None:
        if self.voice is not None and not self.ended:
            await self.voice.playback_report(reply_id, played_ms)

    def _stop_timers(self) -> None:
        """The safety net and the grace timers stop with the call, however it stops here."""
        self.safety_net.close()
        self._cancel_clinician_grace()
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    async def _drain_writer(self) -> None:
        """Let the call writer store what is queued, then stop it and the control listener."""
        await self._writes.put(None)
        if self._writer is not None:
            await self._writer
        if self._control is not None:
            self._control.cancel()

    async def abandon(self) -> None:
        """Another node holds this call's lease now (this process missed its renewals, and the
        caller's reconnect reached that node): stop the pipeline here without storing or sending
        anything more and without ending the session, which goes on there (one pipeline per
        call). Events queued before this are still stored: they are what the caller said here."""
        if self.ended:
            return
        self.ended = self._abandoned = True
        self._send_json = self._send_bytes = None
        self._stop_timers()
        _calls.pop(self.session_id, None)
        listen.call_ended(self.session_id)
        try:
            if self.voice is not None:
                await self.voice.end("moved")
        finally:
            await self._drain_writer()

    async def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._stop_timers()
        try:
            if self.voice is not None:
                await self.voice.end(reason)
        finally:
            await self._drain_writer()
            try:
                # The transcript is complete when the call ends, whether or not Celery is up.
                await database_sync_to_async(services.flush_pending_turns)(self.session_id)
            except Exception:
                logger.exception("could not flush pending turns for session %s", self.session_id[:8])
            await database_sync_to_async(services.record_audit)(
                self.session_id, "session_ended", {"reason": reason}
            )
            _calls.pop(self.session_id, None)
            listen.call_ended(self.session_id)

    # --- outputs -----------------------------------------------------------------------------
    async def _send(
        self, message: proto.Message, *, listeners: dict[str, Any] | None = None, page: bool = True
    ) -> None:
        """A text message to the patient's page, if it is attached (and ``page``); with
        ``listeners``, a copy with those fields added to clinicians listening in. The one place
        the call's messages (triage/protocol.py) become their wire form."""
        data = message.to_dict()
        if listeners is not None:
            listen.call_event(self.session_id, data | listeners)
        if page and self._send_json is not None:
            await self._send_json(data)

    async def _on_event(self, event: ev.VoiceEvent) -> None:
        if self._abandoned:  # the call goes on on another node; this pipeline is winding down
            return
        if isinstance(event, ev.AgentAudio):
            if self._send_bytes is not None:
                await self._send_bytes(audio_frame(event.reply_id, event.pcm))
                listen.agent_audio(self.session_id, event.pcm, event.sample_rate)
            return
        metrics.observe(event)
        if isinstance(event, AffectObserved):
            affect_host.observe(event)  # Prometheus; stored (audit) and shown through the writer
        if isinstance(event, ev.PartialTranscript | ev.FinalTranscript) and not (
            self.ended or self._escalation_seen
        ):
            self._spawn(self.safety_net.observe(event.text, final=isinstance(event, ev.FinalTranscript)))
        if isinstance(event, ev.EscalationRaised):
            self._escalation_seen = True
            # Straight to the dashboards, ahead of the database write: the clinician should
            # see it while the patient is still talking.
            self._spawn(self._push_alert(event))
        message = client_message(event)
        if message is not None:
            try:
                await self._send(message, listeners={})
            except Exception:  # a socket closing mid-send must not break the pipeline
                logger.debug("send to patient socket failed", exc_info=True)
        if not isinstance(event, ev.SpeechResumed | ev.SpeechPaused):
            self._writes.put_nowait(event)

    async def _write_loop(self) -> None:
        while True:
            event = await self._writes.get()
            if event is None:
                self._writes.task_done()
                return
            await self._store(event)
            try:
                # Never raises: a channel-layer outage holds the broadcast (channel_outage).
                await self._broadcast(event)
            finally:
                self._writes.task_done()

    async def _store(self, event: ev.VoiceEvent) -> None:
        """Persist one event. While the database is unreachable (a restart, a failover) the
        writer holds it and retries, so the events behind it wait in order and no turn is lost;
        the call goes on meanwhile (audio never waits for this task). A retry of a commit whose
        reply was lost is a no-op for turns (idempotency keys)."""
        delay, waited = DB_RETRY_FIRST_SECONDS, 0.0
        while True:
            try:
                await database_sync_to_async(self._persist)(event)
            except (OperationalError, InterfaceError) as exc:
                if waited >= DB_RETRY_SECONDS:
                    logger.error(
                        "database unreachable for %.0f s: %s for session %s not stored",
                        waited, type(event).__name__, self.session_id[:8],
                    )  # fmt: skip
                    return
                if waited == 0.0:
                    logger.warning(
                        "database unreachable (%s): holding session %s's events and retrying",
                        type(exc).__name__, self.session_id[:8],
                    )  # fmt: skip
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, DB_RETRY_MAX_DELAY_SECONDS)
                continue
            except Exception:
                # Keep the call going; the event is lost from storage only, and that is logged.
                logger.exception(
                    "failed to persist %s for session %s", type(event).__name__, self.session_id[:8]
                )
                return
            if waited:
                logger.info(
                    "database back after %.1f s: session %s's events stored", waited, self.session_id[:8]
                )
            return

    async def drain(self) -> None:
        """Wait until every event queued so far is stored (tests, benchmarks, shutdown)."""
        await self._writes.join()

    def _stored_ids(self, event):
        """A resumed call's pipeline counts turns and replies from 0 again: store them clear of
        the ids the dead node stored (triage/resume.py)."""
        if not self.id_offset:
            return event
        ids = {k: getattr(event, k) + self.id_offset for k in ("turn_id", "reply_id") if hasattr(event, k)}
        return dataclasses.replace(event, **ids)

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
                if event.text.strip():  # no words (noise, or judged not speech): not a turn
                    services.record_patient_turn(
                        sid,
                        self._stored_ids(event),
                        self.wall(event.speech_start),
                        self.wall(event.speech_end),
                    )
            case ev.AssessmentUpdated():
                services.record_assessment(sid, event)
            case ev.EscalationRaised():
                services.record_escalation(sid, event)
            case ev.AgentReplyStarted():
                self._reply_started[event.reply_id] = event.t
            case ev.AgentText():
                # A reply's source is its weakest link: any fallback clause marks it fallback;
                # the rules' words after a model acknowledgement leave it an "llm" reply.
                current = self._reply_source.get(event.reply_id)
                if current != "fallback" and not (current == "llm" and event.source == "rules"):
                    self._reply_source[event.reply_id] = event.source
            case ev.AgentReplyFinished():
                started = self._reply_started.pop(event.reply_id, None)
                services.record_agent_turn(
                    sid,
                    self._stored_ids(event),
                    source="fallback" if event.fallback_used else self._reply_source.pop(event.reply_id, ""),
                    played_ms=event.played_ms,  # kept by the session (VoiceSession._heard_ms)
                    started=self.wall(started) if started is not None else None,
                    ended=self.wall(event.t),
                )
            case ev.TurnMetrics():
                services.record_turn_metrics(sid, event, self.budgets)
            case ev.AgentInterrupted() if not event.by_host:  # a take-over is audited as such
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
                    {"kind": event.kind, "value": event.value, "turn_id": event.turn_id}
                    | ({"detail": event.detail} if event.detail else {})
                    | ({"on_partial": True} if event.on_partial else {}),
                )
            case ev.PipelineError():
                services.record_audit(sid, "pipeline_error", {"stage": event.stage, "code": event.code})
            case AffectObserved():
                affect_host.record(sid, event, event.turn_id + self.id_offset)

    async def _broadcast(self, event: ev.VoiceEvent) -> None:
        """Tell connected clinician dashboards (channel group) what changed."""
        if not isinstance(
            event,
            ev.StateChanged
            | ev.PartialTranscript
            | ev.FinalTranscript
            | ev.EscalationRaised
            | ev.AssessmentUpdated
            | ev.AgentReplyFinished
            | AffectObserved,
        ):
            return
        if isinstance(event, AffectObserved) and not event.reading.tags:
            return
        await channel_outage.group_send(
            groups.DASHBOARD_GROUP, groups.session_changed(self.session_id, type(event).__name__)
        )

    # --- clinician side -----------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_alert(self, event: ev.EscalationRaised) -> None:
        # Held and delivered when the layer returns if it is down; the stored alert is also in
        # every dashboard's snapshot (a dashboard reconnecting after an outage sees it).
        await channel_outage.group_send(
            groups.DASHBOARD_GROUP,
            groups.escalation_raised(
                self.session_id,
                turn_id=event.turn_id,
                level=event.level,
                disposition=event.disposition,
                rule_ids=list(event.rule_ids),
                reasons=[dict(r) for r in event.reasons],
                on_partial=event.on_partial,
                raised_mono=event.t,
                raised_wall=self.wall(event.t).timestamp(),
                host=HOST,
            ),
        )

    async def _on_safety_net_hit(self, hit, on_partial: bool, check_ms: float) -> None:
        """A possible red flag the rules did not fire on: dashboards first, then the stored,
        audited alert. The session's level and status are left to the rules."""
        level = self.interview.assessment.level
        t = time.monotonic()
        await channel_outage.group_send(
            groups.DASHBOARD_GROUP,
            groups.escalation_raised(
                self.session_id,
                kind="safety_net",
                turn_id=None,
                level=int(level) if level is not None else None,
                disposition="possible_red_flag",
                rule_ids=[hit.description_id],
                reasons=[hit.to_dict()],
                on_partial=on_partial,
                raised_mono=t,
                raised_wall=self.wall(t).timestamp(),
                host=HOST,
            ),
        )
        await database_sync_to_async(services.record_safety_net_alert)(
            self.session_id, hit.to_dict(), int(level) if level is not None else None, on_partial, check_ms
        )

    async def _listen_control(self) -> None:
        """Messages for this call from any process: clinician take-over, hand back, server-side
        end, and clinician sockets on other nodes asking for a link (triage/call_link.py)."""
        layer = get_channel_layer()
        if layer is None:
            return
        group = groups.call_group(self.session_id)
        while not self.ended:
            channel = None
            try:
                channel = await layer.new_channel()
                await layer.group_add(group, channel)
                channel_outage.health.ok()
                self.reachable.set()
                while not self.ended:
                    message = await layer.receive(channel)
                    match message.get("type"):
                        case groups.TAKE_OVER:
                            try:
                                await self.take_over(str(message.get("clinician") or "A clinician"))
                            except Exception:  # not a layer failure: report it as what it is
                                logger.exception("take-over of session %s failed", self.session_id[:8])
                        case groups.HAND_BACK:
                            await self.hand_back(str(message.get("text") or ""))
                        case groups.END_CALL:
                            self._spawn(self.end(str(message.get("reason") or "ended_by_server")))
                        case groups.LINK:  # a clinician's socket on another node
                            self._spawn(call_link.serve(self, message))
            except asyncio.CancelledError:
                return
            except Exception as exc:  # a channel-layer outage must not leave the call unreachable
                if not self.ended:
                    channel_outage.health.failed("call control listener", exc)
                    await asyncio.sleep(channel_outage.RETRY_SECONDS)
            finally:
                if channel is not None and not channel_outage.health.down:
                    try:
                        await layer.group_discard(group, channel)
                    except BaseException:
                        logger.debug("group_discard failed", exc_info=True)

    async def take_over(self, clinician: str) -> bool:
        """A clinician takes the call: the agent stops and tells the patient a clinician is joining.

        Listening goes on (the patient's words are still transcribed, stored and checked by the
        rules, so a new red flag still alerts the dashboard), but the agent says nothing more
        until the call is handed back (VoiceSession.set_agent_replies)."""
        if self.ended or self.taken_over_by is not None:
            return False
        self.taken_over_by = clinician
        if self.voice is not None:
            self.voice.set_agent_replies(False)
            await self.voice.interrupt()
            await self.voice.wait_idle()  # the page hears the stop before the notice
        await self._send(proto.ClinicianJoining(TAKE_OVER_TEXT))
        if self.voice is not None:
            await self.voice.say(TAKE_OVER_TEXT, kind="clinician_joining")
        return True

    # --- clinician voice (triage/handoff.py, triage/consumers/clinician_audio.py) -------------
    async def clinician_voice_start(self) -> int | None:
        """The clinician's microphone opens: one host reply id carries their voice to the patient."""
        if self.ended or self.taken_over_by is None:
            return None
        reply_id = next(self._host_reply_ids)
        self._clinician_reply = reply_id
        self._clinician_open.add(reply_id)
        await self._send(proto.AgentReplyStart(reply_id, "clinician"))
        return reply_id

    async def clinician_attach(self) -> tuple[int, bool] | None:
        """A talk socket of the clinician holding the call opens: (reply id, resumed). While the
        clinician's reply is still open (a dropped socket within its grace, or not yet seen to
        close: a reconnect can overtake the old socket's close) the same reply carries on and the
        patient hears nothing odd; else a new one starts. None: nobody holds the call."""
        if self.ended or self.taken_over_by is None:
            return None
        self._clinician_sockets += 1
        if self._clinician_reply is not None:
            self._cancel_clinician_grace()
            return self._clinician_reply, True
        reply_id = await self.clinician_voice_start()
        if reply_id is None:
            self._clinician_sockets -= 1
            return None
        return reply_id, False

    def clinician_detach(self) -> bool:
        """A talk socket closes; True if it was the last one (decide: grace, lost or done)."""
        self._clinician_sockets = max(0, self._clinician_sockets - 1)
        return self._clinician_sockets == 0

    async def clinician_gone(
        self, still_holds: bool, grace_s: float, lost: Callable[[], Awaitable[None]]
    ) -> None:
        """After the last talk socket closed: if the clinician still holds the call, give them
        ``grace_s`` to come back (nothing changes for the patient meanwhile), then ``lost`` (the
        lost-clinician fallback); if they handed back or closed, end their reply."""
        if self._clinician_sockets > 0:
            return  # a reconnect came in while the close was being looked at
        if still_holds and grace_s > 0 and not self.ended:
            self._cancel_clinician_grace()
            loop = asyncio.get_running_loop()
            self._clinician_grace = loop.call_later(
                grace_s, lambda: self._spawn(self._clinician_expired(lost))
            )
            return
        for reply_id in sorted(self._clinician_open):
            await self.clinician_voice_end(reply_id)
        if still_holds:
            await lost()

    def _cancel_clinician_grace(self) -> None:
        if self._clinician_grace is not None:
            self._clinician_grace.cancel()
            self._clinician_grace = None

    async def _clinician_expired(self, lost: Callable[[], Awaitable[None]]) -> None:
        self._clinician_grace = None
        if self._clinician_sockets > 0:
            return
        for reply_id in sorted(self._clinician_open):
            await self.clinician_voice_end(reply_id)
        await lost()

    async def clinician_audio(self, reply_id: int, pcm: bytes) -> bool:
        """Clinician PCM (already at the output rate) to the patient's playback, only while a
        clinician holds the call. Listeners hear it too."""
        if self.ended or self.taken_over_by is None or self._send_bytes is None:
            return False
        await self._send_bytes(audio_frame(reply_id, pcm))
        rate = self.voice.config.output_sample_rate if self.voice is not None else listen.PATIENT_RATE
        listen.clinician_audio(self.session_id, pcm, rate)  # other clinicians listening in
        return True

    async def clinician_said(self, text: str, by: str) -> None:
        """Captions of the clinician's words: to the patient's page and to every listener (who
        also learn which clinician said them)."""
        try:
            await self._send(proto.ClinicianTranscript(text), listeners={"by": by}, page=not self.ended)
        except Exception:  # a socket closing mid-send: the words are stored all the same
            logger.debug("send to patient socket failed", exc_info=True)

    async def clinician_voice_end(self, reply_id: int) -> None:
        """End a clinician reply on the patient's page (once: a hand back ends it before the
        socket that carried it closes)."""
        if reply_id not in self._clinician_open:
            return
        self._clinician_open.discard(reply_id)
        if self._clinician_reply == reply_id:
            self._clinician_reply = None
        if not self.ended:
            await self._send(proto.AgentReplyEnd(reply_id, interrupted=False))

    async def hand_back(self, text: str) -> bool:
        """The clinician hands the call back (or was lost): say ``text``, then the agent speaks
        again. The agent made no reply while the clinician held the call; the next turn continues
        the interview."""
        if self.ended or self.taken_over_by is None:
            return False
        self.taken_over_by = None
        self._cancel_clinician_grace()  # handed back from another page while the socket was down
        for reply_id in sorted(self._clinician_open):
            await self.clinician_voice_end(reply_id)
        if self.voice is not None:
            self.voice.set_agent_replies(True)
            if text:
                await self.voice.say(text, kind="hand_back")
        return True
