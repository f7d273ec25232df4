"""``VoiceSession``: one duplex voice conversation, event driven.

    audio in ─► VAD ─► segmenter ─► streaming ASR (partials, speculative final)
                 │          │                 │
                 │          └─► endpoint ◄────┘ ─► EndOfTurn ─► policy ─► reply
                 └─► barge-in gate (while the agent speaks)        (ack + guarded LLM / script)
                                                                        │
                       outbox ◄── AgentText / AgentAudio ◄── TTS ◄──────┘

Recognition, from audio in to the end of a turn, is ``voice.recognition.AudioRecognition``;
this module is the rest (replies, playback, barge-in, the rules, escalation) and implements its
``RecognitionHooks``.

``feed_audio`` does only cheap per-frame work (VAD ~3 µs, segmentation, endpoint and
barge-in decisions) on the event loop; every model call runs on the shared compute pool
(``voice.compute``) or the LLM backend's own thread, as a task that can be cancelled.
Events leave in order through one outbox task, so a slow host never stalls the audio path.

Speculation: at the first pause the final ASR pass runs at once (the endpoint policy
needs those words anyway), and as soon as it is back the policy is run on a *copy* and
the reply is generated and synthesized behind a closed gate. If the endpoint confirms and
the real policy asks the same thing, the gate opens and audio flows at once; if the
patient goes on, the reply is cancelled and never heard.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from voice.acknowledgement import DEFAULT_SET as DEFAULT_ACK_SET
from voice.acknowledgement import NONE as NO_ACK
from voice.acknowledgement import AcknowledgementSet, choose_acknowledgement
from voice.affect import AffectObserved, AffectReading
from voice.affect_runner import AffectRunner
from voice.compute import Skipped
from voice.config import DEFAULT_ACKNOWLEDGEMENTS, PipelineConfig
from voice.endpointing import BargeInConfig, BargeInDetector, words_of
from voice.events import (
    AcousticAnomaly,
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentResumed,
    AgentText,
    AssessmentUpdated,
    EndOfTurn,
    EscalationRaised,
    FinalTranscript,
    PartialTranscript,
    PipelineError,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StateChanged,
    VoiceEvent,
)
from voice.interfaces import Assessment, DialoguePolicy, Prompt, Transcription
from voice.llm.chunker import split_clauses
from voice.pipeline_output import Outbox
from voice.pipeline_reply import ClauseItem, Reply, ReplyContext
from voice.prosody import CALM, choose, is_elderly_caller
from voice.recognition import AudioRecognition, RecognizedTurn, TurnEnded
from voice.state import CallState, TurnState
from voice.telemetry import TurnTelemetry
from voice.tts import ClauseSpeaker, pcm_ms

log = logging.getLogger(__name__)

S = TurnState
# A joined turn is decoded whole: keep it well inside Whisper's 30 s window.
_MAX_JOIN_S = 20.0
# Prompts after which the caller describes rather than answers (recognition's open_statement).
OPEN_PROMPT_KINDS = frozenset({"greeting", "clarify"})
Emit = Callable[[VoiceEvent], Awaitable[None]]


@dataclass
class SessionStats:
    """Counters for the bench and the host's metrics (no transcript content)."""

    turns: int = 0
    replies: int = 0
    overlaps: int = 0  # speech bursts that began while the agent spoke
    backchannels_ignored: int = 0  # ... and were judged listener noise (agent went on)
    barge_ins: int = 0
    barge_in_reasons: dict[str, int] = field(default_factory=dict)
    barge_in_pauses: int = 0  # the agent held for speech over it ...
    barge_in_resumes: int = 0  # ... and played on (a backchannel or noise)
    speculations: int = 0  # speculative replies started
    speculations_used: int = 0
    speculations_discarded: int = 0
    noise_turns: int = 0  # bursts the recognizer found no words in
    non_speech_turns: int = 0  # ... or words the speech filter judged invented (noise, a loop)
    non_speech_partials: int = 0  # partials judged invented: never shown, never seen by the rules
    partials: int = 0
    escalations: int = 0
    joined_turns: int = 0  # the caller went on after the endpoint: one turn with the one before


@dataclass(frozen=True, slots=True)
class _StaticPrompt:
    kind: str
    text: str
    fixed: bool = True
    rule_ids: tuple[str, ...] = ()


@dataclass
class _Speculation:
    epoch: int
    transcript: Transcription
    decoded_at: float
    prompt: Any
    assessment: Any
    reply: Reply | None


@dataclass
class _Joinable:
    """The turn that just ended, while the caller may still go on with it (issue 12): the
    rules' state from before its words, so a continuation can be joined into one turn."""

    turn_id: int
    audio: Any  # voice.vad.TurnAudio
    endpoint_t: float
    open_statement: bool  # the endpoint's mode before the commit changed it
    history_len: int
    snapshot: Any = None  # the policy before this turn's final (None: not committed yet)
    commit_task: asyncio.Task | None = None
    reply: Reply | None = None
    answer_play_at: float | None = None  # estimated playback start of the reply's answer clause


@dataclass
class _Turn(RecognizedTurn):
    """A recognized turn with what the reply side keeps about it: barge-in and speculation."""

    barge_in: bool = False
    held_reply: int | None = None  # the reply this burst paused (AgentPaused sent)
    spec: _Speculation | None = None
    spec_task: asyncio.Task | None = None
    join: _Joinable | None = None  # over the agent: the turn this burst joins if it interrupts


class VoiceSession:
    """One patient conversation. See the module docstring; the public API is ``start``,
    ``feed_audio``, ``playback_report``, ``end`` and ``state``, and for the host's own needs
    (a clinician taking the call, in the spirit of LiveKit's ``AgentSession``): ``say`` (fixed
    text, now), ``interrupt``, ``set_agent_replies``, ``set_output_connected`` and
    ``playback_ends_at``. The session keeps the record of what was played: every
    ``AgentReplyFinished`` carries the milliseconds the patient heard. The ``on_*`` methods and
    ``escalation_pending`` are recognition's hooks (voice/recognition.py), not host API."""

    def __init__(
        self,
        runtime,
        policy: DialoguePolicy,
        emit: Emit,
        config: PipelineConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str | None = None,
    ):
        self.runtime = runtime
        self.policy = policy
        self.config = cfg = config or runtime.config
        self.clock = clock
        self.stats = SessionStats()
        # One machine, one table (voice/state.py): turn-taking for the whole call, and the
        # escalation flag; the state the host and the audit trail see is derived from the two.
        self._call = CallState()
        self._turns = self._call.turns
        self._outbox = Outbox(emit, on_sent=self._on_sent)
        self._compute = runtime.compute.session(name)
        # What the caller says and when their turn ends (voice/recognition.py); it reports
        # through the RecognitionHooks this class implements (the on_* methods below).
        self._rec = AudioRecognition(
            runtime, cfg, self._compute, self, self.stats, clock=clock, spawn=self._spawn
        )
        self._barge = BargeInDetector(BargeInConfig(min_speech_ms=cfg.barge_in_min_ms))
        # How the caller speaks (voice/affect_runner.py): tags raise attention, never a level.
        self.affect = AffectRunner(self._on_affect)
        self._speaker = ClauseSpeaker(
            runtime.synthesizer,
            runtime.phrases,
            self._compute,
            out_rate=cfg.output_sample_rate,
            chunk_ms=cfg.audio_chunk_ms,
        )
        # Slower, with a pause after each clause (voice/prosody.py): emergency scripts, a caller in
        # high distress or an elderly caller. The empathy phrase: once, when distress is high.
        self._calm_speaker = ClauseSpeaker(
            runtime.synthesizer, runtime.phrases, self._compute,
            out_rate=cfg.output_sample_rate, chunk_ms=cfg.audio_chunk_ms, prosody=CALM,
        )  # fmt: skip
        self._empathy = self.affect.tracker.rules.empathy_phrase
        self._empathy_spoken = False
        self._reply_ids = itertools.count(1)
        self._ack_set = (
            DEFAULT_ACK_SET
            if tuple(cfg.acknowledgements) == DEFAULT_ACKNOWLEDGEMENTS
            else AcknowledgementSet.from_phrases(cfg.acknowledgements)
        )
        self._recent_acks: list[str] = []  # acknowledgements spoken, oldest first
        self._reply: Reply | None = None  # the reply being spoken (gate open)
        self._pending: Reply | None = None  # reply of the current user turn, before its audio starts
        self._telemetry: dict[int, TurnTelemetry] = {}
        self._playback_end = 0.0  # session-clock estimate of when the host's playback ends
        self._held_since: float | None = None  # playback held by AgentPaused since then
        self._playback_start: dict[int, float] = {}
        self._played: dict[int, float] = {}
        self._played_at: dict[int, float] = {}
        self._played_event: dict[int, asyncio.Event] = {}
        # What Turn.played_ms records (_heard_ms): per open reply, the audio the host took while
        # the patient's playback was attached, and the client's latest report since the last stop.
        self._sent_ms: dict[int, float] = {}
        self._reports: dict[int, float] = {}
        self._output_connected = True
        self._replying = True  # False while a clinician holds the call (set_agent_replies)
        self._script_due: Prompt | None = None  # emergency script to speak at the next pause
        self._tasks: set[asyncio.Task] = set()
        self._open_replies: dict[int, Reply] = {}  # opened (AgentReplyStarted) and not finished
        self._started = False
        self._ended = False
        self._history: list[tuple[str, str]] = []  # (speaker, text) as heard
        self._joinable: _Joinable | None = None

    # --- public API -----------------------------------------------------------------------

    @property
    def _turn(self) -> _Turn | None:
        """The caller's open turn (recognition holds it)."""
        return self._rec.turn  # type: ignore[return-value]

    @property
    def state(self) -> str:
        return self._call.state.value

    @property
    def escalated(self) -> bool:
        """The rules escalated this call: only the fixed script is spoken from here on."""
        return self._call.escalated

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """The conversation as heard: patient finals and the agent text actually played."""
        return list(self._history)

    async def start(self, *, greet: bool = True) -> None:
        """Start the outbox and greet (``policy.opening()``, a cached phrase); without
        ``greet`` the session only listens (the host speaks first: :meth:`say`)."""
        if self._started:
            return
        self._started = True
        self._outbox.start()
        opening = self.policy.opening() if greet else None
        if opening is None or not opening.text.strip():
            self._set_state(S.LISTENING, "session_start")
            return
        self._set_state(S.AGENT_SPEAKING, "greeting")
        self._open(self._make_reply(0, opening, None, None))

    async def feed_audio(self, pcm: bytes) -> None:
        """16 kHz s16le mono, any length; frames are processed now, inference is scheduled."""
        if self._ended:
            return
        if not self._started:
            await self.start()
        if self._turns.state is S.IDLE:
            self._set_state(S.LISTENING, "audio")
        self._rec.push_audio(pcm)

    async def playback_report(self, reply_id: int, played_ms: float) -> None:
        """The host says how much of reply ``reply_id`` the patient actually heard."""
        if reply_id not in self._open_replies:
            return  # a late report for a finished reply changes nothing
        if reply_id in self._sent_ms:
            self._reports[reply_id] = float(played_ms)
        self._played[reply_id] = max(self._played.get(reply_id, 0.0), float(played_ms))
        self._played_at[reply_id] = self.clock()
        ev = self._played_event.get(reply_id)
        if ev is not None:
            ev.set()

    async def end(self, reason: str = "ended") -> None:
        """Cancel everything, deliver what is queued, emit the final state 'ended'."""
        if self._ended:
            return
        self._ended = True
        self._rec.close()
        self.affect.close()
        for reply in (self._pending, self._reply):
            if reply is not None:
                reply.cancel()
        if self._turn is not None:
            self._drop_turn_work(self._turn)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Every AgentReplyStarted gets its AgentReplyFinished, with what was heard of it.
        for reply in list(self._open_replies.values()):
            played = self._played.get(reply.reply_id)
            if played is None:
                played = self._estimate_played(reply)
            self._finish_reply(reply, interrupted=True, text=reply.timeline.text_played(played), final=True)
        self._reply = self._pending = None
        if not self._started:
            self._outbox.start()
            self._started = True
        self._set_state(S.ENDED, reason, force=True)
        self._compute.close()
        await self._outbox.close()

    async def wait_idle(self) -> None:
        """Wait until queued events are delivered to the host."""
        await self._outbox.drain()

    # --- host requests ----------------------------------------------------------------------

    async def say(self, text: str, *, kind: str = "script", allow_interruptions: bool = False) -> int | None:
        """Speak fixed ``text`` now, verbatim (LiveKit's ``AgentSession.say``): the clinician
        hand-over notices. Whatever the agent was saying stops first (:meth:`interrupt`). It is
        a reply like any other (AgentReplyStarted ... AgentReplyFinished with its played
        milliseconds, in the transcript as heard), without turn telemetry; speech over it
        interrupts it only with ``allow_interruptions``. It is one clause (one caption line)
        and its audio is kept whole in the shared phrase cache, so the next call says it at
        once. Returns the reply id once its audio is with the host (None: the session has
        ended, or nothing to say)."""
        if self._ended or not text.strip():
            return None
        if not self._started:
            await self.start(greet=False)
        await self.interrupt()
        if text not in self.runtime.phrases:
            try:
                await self._compute.run(self.runtime.phrases.add, text)
            except Exception:  # the reply synthesizes it itself then
                log.exception("could not cache the text to say")

        async def source() -> AsyncIterator[ClauseItem]:
            yield ClauseItem(text, "script", "script", False)

        reply = Reply(
            turn_id=0, kind=kind, required_text=text, source=source(), speaker=self._speaker,
            put=self._put, clock=self.clock, context=ReplyContext(), on_clause=self._on_clause,
        ).start()  # fmt: skip
        reply.said, reply.interruptible = True, allow_interruptions
        self._open(reply)
        await reply.finished
        await self._outbox.drain()
        return reply.reply_id

    async def interrupt(self) -> int | None:
        """Stop what the agent is saying now, at the host's request (LiveKit's
        ``AgentSession.interrupt``): a reply not heard yet is dropped; the one being spoken is
        cut off as by a barge-in, and its record keeps what the client reports it played after
        the stop. Returns the id of the reply cut off (None: the agent was not speaking)."""
        if self._ended:
            return None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._abandon(pending)
            if self._turns.state is S.THINKING:  # that reply was what it was preparing
                self._set_state(S.LISTENING, "interrupted_by_host")
        reply = self._reply
        if reply is None or reply.cancelled:
            return None
        now = self.clock()
        reply.interrupted = True
        reply.cancel()
        self._held_since = None
        self._playback_end = now  # the host flushes its audio queue
        self._outbox.purge(lambda e: isinstance(e, AgentAudio | AgentText) and e.reply_id == reply.reply_id)
        self._put(AgentInterrupted(reply.reply_id, reply.turn_id, now, now, by_host=True))
        if not reply.said:
            self._tel(reply.turn_id).interrupted = True
        self._reply = None
        self._joinable = None
        self._set_state(S.INTERRUPTED, "interrupted_by_host", force=True)
        turn = self._turn
        if turn is not None and turn.overlap and not turn.ended:
            # The patient was talking over the agent: that is their turn now.
            turn.overlap, turn.held_reply = False, None
            self._set_state(S.USER_SPEAKING, "speech_continues", turn_id=turn.turn_id, force=True)
            self._rec.recheck_endpoint(turn)
        else:
            self._set_state(S.LISTENING, "interrupted_by_host", force=True)
        self._spawn(self._finish_interrupted(reply, now), "reply")
        return reply.reply_id

    def set_agent_replies(self, enabled: bool) -> None:
        """Off while a clinician holds the call: the session goes on listening, transcribing and
        running the rules on every turn (a new red flag still raises an escalation) but opens no
        reply of its own; :meth:`say` still speaks. On again: the next turn is answered."""
        self._replying = enabled
        if not enabled and self._turn is not None:
            self._cancel_speculation(self._turn)

    @property
    def agent_replies(self) -> bool:
        """Whether the agent answers turns (see :meth:`set_agent_replies`)."""
        return self._replying

    def set_output_connected(self, connected: bool) -> None:
        """The host says whether the patient's playback is attached: audio handed over while
        it is not (a dropped socket) was never heard and does not count as played."""
        self._output_connected = connected

    @property
    def playback_ends_at(self) -> float:
        """Session-clock estimate of when the patient will have heard all audio sent so far
        (the clinician's voice must not queue behind the hand-over notice)."""
        return self._playback_end

    # --- plumbing -------------------------------------------------------------------------

    def _put(self, event: VoiceEvent) -> None:
        self._outbox.put(event)

    def _spawn(self, coro, stage: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self._guard(coro, stage), name=f"voice-{stage}")
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                coro.close()  # cancelled before it ran: close it quietly

        task.add_done_callback(done)
        return task

    async def _guard(self, coro, stage: str):
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Skipped:
            return None
        except Exception as exc:
            log.exception("voice stage %s failed", stage)
            self._put(PipelineError(stage, type(exc).__name__, str(exc)[:200], self.clock()))
            return None

    def _set_state(self, target: TurnState, cause: str, *, turn_id: int | None = None, force: bool = False):
        """A turn-taking move, validated by the one table, and reported to the host.

        ``force``: a move the table refuses is skipped, not raised (the host's requests come
        at any time). Once the call has escalated every move is made so, and none but 'ended'
        is reported: the table lets nothing else follow 'escalated'."""
        turns = self._turns
        if turns.state is target or turns.state is S.ENDED:
            return
        if (force or self._call.escalated) and not turns.can(target):
            return
        tid = turn_id if turn_id is not None else self._rec.turn_id
        t = self.clock()
        reported = self._call.move(target, cause=cause, t=t, turn_id=tid)
        if reported is not None:
            self._put(reported)

    def _tel(self, turn_id: int) -> TurnTelemetry:
        tel = self._telemetry.get(turn_id)
        if tel is None:
            tel = self._telemetry[turn_id] = TurnTelemetry(turn_id, self.config.budgets_ms)
        return tel

    def _mark(self, turn_id: int, name: str, t: float, *, overwrite: bool = False) -> None:
        for miss in self._tel(turn_id).mark(name, t, overwrite=overwrite):
            self._put(miss)

    def _on_sent(self, event: VoiceEvent) -> None:
        """Outbox callback: the host has this event now. Tracks the playback estimate."""
        if isinstance(event, AgentText) and event.text == self._empathy:
            self._empathy_spoken = True  # said (a discarded speculative reply never sends it)
        if isinstance(event, AgentInterrupted):
            # The client answers the stop with what it played; its earlier reports only said
            # that its queue ran dry while the reply was still being produced.
            self._reports.pop(event.reply_id, None)
        if not isinstance(event, AgentAudio):
            return
        now = self.clock()
        if self._output_connected and event.reply_id in self._open_replies:
            self._sent_ms[event.reply_id] = self._sent_ms.get(event.reply_id, 0.0) + pcm_ms(
                event.pcm, event.sample_rate
            )
        start = max(self._playback_end, now)
        self._playback_end = start + pcm_ms(event.pcm, event.sample_rate) / 1000.0
        if event.reply_id not in self._playback_start:
            self._playback_start[event.reply_id] = start
            reply = self._reply
            if reply is not None and reply.reply_id == event.reply_id:
                self._mark(reply.turn_id, "first_audio_out", now)
        reply = self._reply
        if (
            reply is not None
            and reply.reply_id == event.reply_id
            and event.clause_index == reply.ctx.answer_index
        ):
            self._mark(reply.turn_id, "answer_audio_out", now)
            j = self._joinable
            if j is not None and j.reply is reply and j.answer_play_at is None:
                j.answer_play_at = start

    # --- recognition hooks (voice/recognition.py: RecognitionHooks) ----------------------

    def on_anomaly(self, anomaly: AcousticAnomaly, *, of_turn: bool) -> None:
        if of_turn:
            self._tel(anomaly.turn_id).anomalies.append(anomaly.kind)
        self._put(anomaly)

    def on_frame_error(self, exc: Exception) -> None:
        self._put(PipelineError("audio_in", type(exc).__name__, str(exc), self.clock()))

    def escalation_pending(self) -> bool:
        return self._script_due is not None

    def hold_armed(self) -> bool:
        return (
            self.config.barge_in_pause_ms > 0
            and self._turns.state is S.AGENT_SPEAKING
            and self._interruptible_reply() is not None
        )

    def on_overlap_speech(self, turn: _Turn) -> None:
        """A voiced frame over the agent: hold it, interrupt it, or let a backchannel go."""
        rec, cfg = self._rec, self.config
        quiet_ms = rec.quiet_ms(cfg.barge_in_hold_min_dbfs)
        if (
            turn.held_reply is None
            and rec.voiced_ms >= cfg.barge_in_pause_ms > 0
            # a voiced, loud frame (not the tail of a released burst, which webrtcvad may
            # still call speech at the noise floor)
            and rec.unvoiced_ms == 0
            and quiet_ms == 0
            # webrtcvad calls short blips in a quiet noise floor "speech": only a burst
            # loud enough (its last 300 ms, not the previous turn) holds the agent
            and rec.recent_voiced_dbfs(rec.last_frame_end - 0.3) >= cfg.barge_in_hold_min_dbfs
        ):
            self._hold(turn)
        if self._barge.update(voiced_ms=rec.voiced_ms):
            self._interrupt(turn, self._barge.reason or "duration")
        elif (
            turn.held_reply is not None
            and self._barge.heard_backchannel
            and (rec.unvoiced_ms >= cfg.barge_in_release_ms or quiet_ms >= cfg.barge_in_quiet_release_ms)
        ):
            self._release(turn)  # "okay" and the voice stopped: play on (words can still cancel)

    def on_speech_started(self, ev: SpeechStarted) -> None:
        state = self._turns.state
        agent_talking = self._reply is not None and not self._reply.cancelled
        # Once escalated, speech while any reply plays is over the agent (the script stands).
        overlap = agent_talking and (state is S.AGENT_SPEAKING or self._call.escalated)
        join = self._join_candidate(ev.t)
        if not overlap:
            self._joinable = None  # a burst over the reply keeps it: a backchannel joins nothing
        if state is S.THINKING and self._pending is not None and not self._call.escalated:
            # The patient went on after the endpoint, before any audio: drop that reply (not
            # once escalated: the reply waiting for its audio then is the script).
            self._abandon(self._pending)
            self._pending = None
        turn = self._rec.open_turn(ev, overlap=overlap, turn_type=_Turn)
        self._mark(ev.turn_id, "speech_start", ev.t)
        self._put(ev)
        if overlap:
            self.stats.overlaps += 1
            self._barge.reset()
            turn.join = join  # joined if this burst turns out to be an interruption
        else:
            self._set_state(S.USER_SPEAKING, "speech_started", turn_id=ev.turn_id)
            if join is not None:
                self._join(turn, join)

    def on_speech_paused(self, ev: SpeechPaused, turn: _Turn | None) -> bool:
        self._put(ev)
        if turn is None:
            return True
        if (
            turn.overlap
            and turn.held_reply is not None
            and (self._barge.heard_backchannel or self._barge.heard_no_words)
        ):
            # A partial already heard only "uh-huh" / "okay" (or, in a short burst, no reliable
            # word: a hum, a cough) and the burst stopped: play on now rather than after the
            # decode of the whole burst (which can still interrupt).
            self._release(turn)
        if self._script_due is not None and not turn.overlap:
            self._rec.end_turn(turn, "escalation")
            return True
        return False

    def on_speech_resumed(self, ev: SpeechResumed, turn: _Turn | None) -> None:
        self._put(ev)
        if turn is not None:
            self._cancel_speculation(turn)

    def _cancel_speculation(self, turn: _Turn) -> None:
        if turn.spec_task is not None:
            turn.spec_task.cancel()
            turn.spec_task = None
        if turn.spec is not None:
            if turn.spec.reply is not None:
                turn.spec.reply.cancel()  # never opened: not a sound of it was sent
                self.stats.speculations_discarded += 1
            turn.spec = None

    def _drop_turn_work(self, turn: _Turn) -> None:
        self._cancel_speculation(turn)
        self._rec.drop(turn)

    # --- joined turns ---------------------------------------------------------------------

    def _join_candidate(self, onset: float) -> _Joinable | None:
        """The ended turn speech starting at ``onset`` may continue, if any: the caller
        cannot have heard the reply's question yet (it had not played for
        ``join_answer_grace_ms``), it is within ``join_window_ms`` of the endpoint, and
        nothing escalated (the emergency script stands)."""
        j, cfg = self._joinable, self.config
        if j is None or self._call.escalated or self._script_due is not None:
            return None
        if j.reply is not None and j.reply.kind == "emergency":
            return None
        if onset - j.endpoint_t > cfg.join_window_ms / 1000.0:
            return None
        if j.answer_play_at is not None and onset >= j.answer_play_at + cfg.join_answer_grace_ms / 1000.0:
            return None
        return j

    def _join(self, turn: _Turn, j: _Joinable) -> None:
        """The caller went on with the turn that just ended (its reply was dropped or has
        just been interrupted): roll the rules back to before its words and make ``turn``
        hear both, so the statement is judged once, whole, and nothing answers the fragment."""
        if j.commit_task is not None:
            j.commit_task.cancel()  # its final has not reached the rules yet: it never will
        self._joinable = None
        if j.snapshot is not None:
            self.policy.restore(j.snapshot)
            if len(self._history) > j.history_len and self._history[j.history_len][0] == "patient":
                del self._history[j.history_len]
        self._rec.open_statement = j.open_statement
        self.stats.joined_turns += 1
        self._mark(turn.turn_id, "speech_start", j.audio.speech_start, overwrite=True)
        self._rec.join(turn, j.audio)

    # --- words ----------------------------------------------------------------------------

    def on_partial(self, turn: _Turn, partial: PartialTranscript) -> None:
        turn_id = turn.turn_id
        if turn.overlap:
            # Over the agent only the barge-in gate sees it (a backchannel is not a turn).
            # A one-word partial of a cut-off burst is often a hallucination ("Mm-h..." ->
            # "And"): the gate trusts one word only if it opens an interruption ("Wait");
            # once the burst has paused, the decode of all of it decides.
            heard = self._rec.reliable_words(partial.text, partial.avg_logprob, partial.no_speech_prob)
            if self._rec.speaking:
                if self._barge.update(voiced_ms=self._rec.voiced_ms, partial_text=heard, final=False):
                    self._interrupt(turn, self._barge.reason or "words")
            return
        self.stats.partials += 1
        self._put(partial)
        self._tel(turn_id).observe_partial(partial.avg_logprob)
        if not partial.text.strip():
            return
        assessment = self.policy.observe_partial(partial.text)
        self._assessment(turn_id, assessment, on_partial=True)

    def on_overlap_words(self, turn: _Turn, result: Transcription) -> None:
        # Over the agent, words are words even if the patient has gone on since.
        heard = self._rec.reliable_words(result.text, result.avg_logprob, result.no_speech_prob)
        if self._barge.update(voiced_ms=self._rec.voiced_ms, partial_text=heard):
            self._interrupt(turn, self._barge.reason or "words")
        elif self._rec.paused:
            # Listener noise over the agent ("uh-huh", a cough): the agent goes on.
            self.stats.backchannels_ignored += 1
            self._release(turn)
            self._rec.close_burst(turn)

    def on_pause_words(self, turn: _Turn, epoch: int, result: Transcription) -> None:
        if self.config.speculation and turn.spec is None and not self._call.escalated and self._replying:
            self._speculate(turn, epoch, result)

    def on_no_words(self, turn: _Turn) -> None:
        self._set_state(S.LISTENING, "no_words", turn_id=turn.turn_id)

    def on_burst_closed(self, turn: _Turn) -> None:
        self._telemetry.pop(turn.turn_id, None)

    # --- end of turn ----------------------------------------------------------------------

    def on_end_of_turn(self, ended: TurnEnded) -> None:
        turn, reason, audio, now = ended.turn, ended.reason, ended.audio, ended.t
        if audio is not None:
            self.affect.turn_audio(turn.turn_id, audio.audio, audio.sample_rate)
        self._joinable = None
        if (
            self.config.join_window_ms > 0
            and audio is not None
            and not self._call.escalated
            and self._script_due is None
            and audio.audio.size <= _MAX_JOIN_S * audio.sample_rate
        ):
            self._joinable = _Joinable(turn.turn_id, audio, now, self._rec.open_statement, len(self._history))
        speech_end = audio.speech_end if audio is not None else now
        self.stats.turns += 1
        self._put(EndOfTurn(turn.turn_id, now, speech_end, reason))
        self._mark(turn.turn_id, "speech_end", speech_end)
        self._mark(turn.turn_id, "endpoint", now)
        for anomaly in ended.anomalies:
            self.on_anomaly(anomaly, of_turn=True)
        self._set_state(S.THINKING, f"end_of_turn:{reason}", turn_id=turn.turn_id)
        fresh = turn.pause_epoch == turn.epoch
        spec = turn.spec if (turn.spec is not None and turn.spec.epoch == turn.epoch) else None

        if not self._replying:
            # A clinician holds the call: the rules hear the turn (a red flag still escalates),
            # the agent says nothing.
            self._cancel_speculation(turn)
            if self._script_due is not None:
                self._take_script()  # the rules latch the escalation as when it is spoken
            self._set_state(S.LISTENING, "agent_held", turn_id=turn.turn_id)
            task = self._spawn(self._commit_final(turn, fresh, prompt_box=None, held=True), "policy")
            if self._joinable is not None and self._joinable.turn_id == turn.turn_id:
                self._joinable.commit_task = task
            return

        if self._script_due is not None:
            # Escalated on a partial: the fixed emergency script goes out now, verbatim.
            self._cancel_speculation(turn)
            self._open(self._make_reply(turn.turn_id, self._take_script(), None, None))
            self._spawn(self._commit_final(turn, fresh, prompt_box=None), "policy")
            return

        if spec is not None and spec.reply is not None:
            # Speculation confirmed by the endpoint: commit the same words to the real
            # policy; if it asks what the copy asked, the pre-made reply goes out now.
            self._mark(turn.turn_id, "asr_start", turn.pause_started or now)
            prompt = self._commit_transcript(turn, spec.transcript, spec.decoded_at)
            if prompt is not None and _same_prompt(prompt, spec.prompt):
                self.stats.speculations_used += 1
                self._tel(turn.turn_id).speculative = True
                self._open(spec.reply)
                return
            spec.reply.cancel()
            turn.spec = None
            self.stats.speculations_discarded += 1
            self._reply_for(turn, prompt, spec.transcript.text)
            return

        if fresh and self.config.speculation and turn.pause_result is not None:
            # The words are in but nothing was speculated (escalation never is): commit them
            # now, so an emergency script leads at once, with no acknowledgement before it.
            self._mark(turn.turn_id, "asr_start", turn.pause_started or now)
            prompt = self._commit_transcript(turn, turn.pause_result, turn.pause_done or now)
            self._reply_for(turn, prompt, turn.pause_result.text)
            return

        # Not speculated (or not ready yet): the acknowledgement starts now (response onset)
        # while the final transcript, the policy and the generation catch up behind it.
        self._cancel_speculation(turn)
        prompt_box: asyncio.Future = asyncio.get_running_loop().create_future()
        ack = self._choose_ack(turn.latest_partial)  # the words so far, if a partial has them
        reply = self._make_reply(
            turn.turn_id, _StaticPrompt("acknowledgement", "", False), ack, None, deferred=prompt_box
        )
        self._open(reply)
        task = self._spawn(self._commit_final(turn, fresh, prompt_box=prompt_box), "policy")
        if self._joinable is not None and self._joinable.turn_id == turn.turn_id:
            self._joinable.commit_task = task

    def _reply_for(self, turn: _Turn, prompt, said: str) -> None:
        if prompt is None or not prompt.text.strip():
            self._no_reply(turn.turn_id)
            return
        self._open(self._make_reply(turn.turn_id, prompt, self._ack_for(prompt, said), said))

    def _no_reply(self, turn_id: int) -> None:
        self._set_state(S.LISTENING, "no_reply", turn_id=turn_id)
        tel = self._telemetry.pop(turn_id, None)
        if tel is not None:
            self._put(tel.finish(self.clock()))

    async def _commit_final(
        self, turn: _Turn, use_pause_decode: bool, *, prompt_box, held: bool = False
    ) -> None:
        result: Transcription | None = None
        try:
            t0 = self.clock()
            decoded_at = t0
            if use_pause_decode and self.config.speculation and turn.pause_decode is not None:
                await asyncio.wait([turn.pause_decode])
                result = turn.pause_result
                decoded_at = turn.pause_done or self.clock()
                self._mark(turn.turn_id, "asr_start", turn.pause_started or t0)
            if result is None:
                # The final pass after the endpoint (speculation off, or nothing usable yet).
                self._mark(turn.turn_id, "asr_start", t0, overwrite=True)
                result = await self._rec.final_decode(turn)
                decoded_at = self.clock()
            prompt = self._commit_transcript(turn, result, decoded_at)
        except BaseException:
            if prompt_box is not None and not prompt_box.done():
                prompt_box.set_result(None)
            raise
        if prompt_box is not None and not prompt_box.done():
            prompt_box.set_result((prompt, result.text))
        if held:  # no reply closes this turn's telemetry
            tel = self._telemetry.pop(turn.turn_id, None)
            if tel is not None:
                self._put(tel.finish(self.clock()))

    def _commit_transcript(self, turn: _Turn, result: Transcription, decoded_at: float) -> Prompt | None:
        """FinalTranscript → policy.observe_final → assessment/escalation → next prompt."""
        turn.transcriber.close()
        self._mark(turn.turn_id, "asr_final", decoded_at)
        tel = self._tel(turn.turn_id)
        if self._rec.non_speech(turn.turn_id, result):
            result = replace(result, text="")  # a final with no words: no turn, nothing for the rules
        self.affect.turn_words(turn.turn_id, result.text, len(words_of(result.text)))
        self._put(
            FinalTranscript(
                turn.turn_id, result.text, result.avg_logprob, result.no_speech_prob,
                tel.marks.get("speech_start", turn.speech_start), tel.marks.get("speech_end", decoded_at),
                decoded_at,
            )
        )  # fmt: skip
        if not words_of(result.text):
            return None
        j = self._joinable
        if j is not None and j.turn_id == turn.turn_id and j.snapshot is None:
            j.snapshot = self.policy.fork()  # to roll back to if the caller goes on (_join)
        self._history.append(("patient", result.text))
        assessment = self.policy.observe_final(result.text)
        self._assessment(turn.turn_id, assessment, on_partial=False)
        if self._script_due is not None:
            # Escalated on this final: the script is the reply.
            script, self._script_due = self._script_due, None
            return script
        prompt = self.policy.next_prompt()
        self._rec.open_statement = prompt is not None and prompt.kind in OPEN_PROMPT_KINDS
        return prompt

    def _on_affect(self, reading: AffectReading) -> None:
        """A turn's affect tags: an attention tag's question is queued in the policy (asked once,
        answered through the rules); the level is never touched."""
        if self._ended:
            return
        queued = []
        for qid in reading.questions:
            try:
                if self.policy.queue_question(qid):
                    queued.append(qid)
            except Exception:
                log.exception("policy.queue_question failed for an affect tag")
        self._put(AffectObserved(reading.turn_id, reading, tuple(queued), self.clock()))

    def _assessment(self, turn_id: int, assessment, *, on_partial: bool) -> None:
        detail = _to_dict(assessment)
        self._put(
            AssessmentUpdated(
                turn_id, assessment.level, assessment.disposition,
                bool(assessment.escalate), tuple(detail.get("reasons", ()) or ()),
                on_partial, self.clock(), detail,
            )
        )  # fmt: skip
        if assessment.escalate and not self._call.escalated:
            self._escalate(turn_id, assessment, detail, on_partial)

    def _escalate(self, turn_id: int, assessment, detail: dict, on_partial: bool) -> None:
        self._joinable = None  # an escalation stands: the script leads, nothing is rolled back
        self.stats.escalations += 1
        script = _emergency_prompt(self.policy, assessment, detail)
        if script is None:
            self._put(
                PipelineError(
                    "policy", "no_emergency_script", "escalated without a fixed script", self.clock()
                )
            )
            script = _StaticPrompt("emergency", EMERGENCY_FALLBACK, True)
        self._put(
            EscalationRaised(
                turn_id, int(assessment.level or 1),
                str(assessment.disposition or "emergency"),
                tuple(script.rule_ids or detail.get("rule_ids", ()) or ()),
                tuple(detail.get("reasons", ()) or ()), script.text, on_partial, self.clock(),
            )
        )  # fmt: skip
        # Whatever else was being prepared is moot now (on a final, the reply waiting for
        # this very transcript carries the script instead).
        turn = self._turn
        if turn is not None:
            self._cancel_speculation(turn)
        if on_partial and self._pending is not None:
            self._abandon(self._pending)
            self._pending = None
        # A flag of the call, not a turn's state: turn-taking goes on (self._turns), the host and
        # the audit trail see 'escalated' until the call ends (nothing once it has ended).
        cause = "escalation_partial" if on_partial else "escalation"
        reported = self._call.escalate(cause=cause, t=self.clock(), turn_id=turn_id)
        if reported is not None:
            self._put(reported)
        self._script_due = script
        if turn is not None and not turn.ended and self._rec.paused and not turn.overlap:
            self._rec.end_turn(turn, "escalation")  # the patient has stopped: speak now
        elif turn is None and self._reply is None and on_partial:
            if self._replying:
                self._open(self._make_reply(turn_id, self._take_script(), None, None))
            else:
                self._take_script()  # held by a clinician: latched, not spoken

    def _take_script(self):
        """The script about to be spoken. Asking the policy for it now also tells the policy
        it is being spoken (the rules latch the escalation then); if the policy no longer
        offers a fixed script (the partial was revised away), the one raised is spoken."""
        script, self._script_due = self._script_due, None
        try:
            now = self.policy.next_prompt()
        except Exception:
            log.exception("policy.next_prompt failed while escalating")
            now = None
        if now is not None and now.fixed and now.kind == script.kind:
            return now
        return script

    # --- speculation ----------------------------------------------------------------------

    def _speculate(self, turn: _Turn, epoch: int, result: Transcription) -> None:
        """Policy on a copy + reply generation + synthesis, all behind a closed gate."""
        if not words_of(result.text):
            return
        try:
            shadow = self.policy.fork()
            assessment = shadow.observe_final(result.text)
            if assessment.escalate:
                return  # escalation is never speculative: the real policy raises it at the endpoint
            prompt = shadow.next_prompt()
        except Exception:  # speculation is an optimisation: the confirmed path still works
            log.exception("speculative policy step failed")
            return
        if prompt is None or not prompt.text.strip():
            return
        self.stats.speculations += 1
        reply = self._make_reply(
            turn.turn_id, prompt, self._ack_for(prompt, result.text), result.text, speculative=True
        )
        turn.spec = _Speculation(epoch, result, turn.pause_done or self.clock(), prompt, assessment, reply)

    # --- replies --------------------------------------------------------------------------

    def _ack_for(self, prompt, said: str | None) -> str | None:
        """The reply's one acknowledgement, or None: fixed text (an emergency script leads at
        once) and, with ``ack_source="model"``, the model's own acknowledgement instead."""
        if prompt.fixed:
            return None
        if self.config.ack_source == "model" and self.runtime.generator is not None:
            return None
        return self._choose_ack(said, may_omit=True)  # the question is ready: it may lead

    def _choose_ack(self, said: str | None, *, may_omit: bool = False) -> str | None:
        if self.affect.tracker.distress_high and not self._empathy_spoken:
            return self._empathy  # fixed, reviewed text (clinical_rules affect.yaml), pre-synthesized
        return choose_acknowledgement(said, self._recent_acks, self._ack_set, may_omit=may_omit)

    def _speaker_for(self, prompt) -> ClauseSpeaker:
        calm = choose(
            prompt.kind,
            distress_high=self.affect.tracker.distress_high,
            elderly=is_elderly_caller(self.policy.context),
        )
        return self._calm_speaker if calm is CALM else self._speaker

    def _make_reply(
        self,
        turn_id: int,
        prompt,
        ack: str | None,
        said: str | None,
        *,
        speculative: bool = False,
        deferred: asyncio.Future | None = None,
    ) -> Reply:
        """A reply speaking ``ack`` (cached) then ``prompt``: verbatim when fixed (or when
        there is no LLM), else through the guardrail. ``deferred``: the prompt and the
        patient's words arrive later through that future (ack first, answer after)."""
        ctx = ReplyContext()
        holder: list[Reply] = []

        async def clauses() -> AsyncIterator[ClauseItem]:
            if ack:
                yield ClauseItem(ack, "cached", "ack", False)
            p, heard = prompt, said
            if deferred is not None:
                got = await deferred
                if got is None:
                    return
                p, heard = got
                if p is None or not p.text.strip():
                    return
                if holder:
                    holder[0].kind, holder[0].required_text = p.kind, p.text
            if (
                p.fixed
                or self.runtime.generator is None
                or heard is None
                or ack
                or self.config.ack_source != "model"
            ):
                # Verbatim: fixed text, no model, or an acknowledgement already said (the
                # model's would be a second one: "Okay. Okay, thank you for ..."), or none
                # chosen on purpose (the question leads).
                spoken = "script" if p.fixed or (not ack and heard is None) else "rules"
                role = "script" if spoken == "script" else "required"
                for i, text in enumerate(split_clauses(p.text)):
                    source = "cached" if text in self.runtime.phrases else spoken
                    yield ClauseItem(text, source, role, i == 0)
                return
            async for item in self._llm_clauses(p, heard, ctx):
                yield item

        reply = Reply(
            turn_id=turn_id,
            kind=prompt.kind,
            required_text=prompt.text,
            source=clauses(),
            speaker=self._speaker_for(prompt),
            put=self._put,
            clock=self.clock,
            speculative=speculative,
            context=ctx,
            on_clause=self._on_clause,
            on_render=self._on_render,
        )
        holder.append(reply)
        return reply.start()

    async def _llm_clauses(self, prompt, said: str, ctx: ReplyContext) -> AsyncIterator[ClauseItem]:
        from voice.llm.guardrail import GuardedReply, GuardrailConfig

        guarded = GuardedReply(
            prompt,
            said,
            self.runtime.generator,
            config=GuardrailConfig.from_pipeline(self.config),
        )
        ctx.guarded = guarded
        t0 = self.clock()
        ctx.marks["llm_start"] = t0
        first_required = True
        try:
            async for clause in guarded:
                if "first_clause" not in ctx.marks:
                    ctx.marks["first_clause"] = self.clock()
                if guarded.ttft_ms is not None:
                    ctx.marks.setdefault("llm_first_token", t0 + guarded.ttft_ms / 1000.0)
                carries = clause.role == "required" and first_required
                if carries:
                    first_required = False
                yield ClauseItem(clause.text, clause.source, clause.role, carries)
        finally:
            if guarded.ttft_ms is not None:
                ctx.marks.setdefault("llm_first_token", t0 + guarded.ttft_ms / 1000.0)
            if guarded.fallback_used:
                ctx.fallback_used = True

    def _open(self, reply: Reply) -> None:
        """Make ``reply`` the turn's reply: give it an id and let its audio out."""
        reply_id = next(self._reply_ids)
        reply.open(reply_id)
        self._open_replies[reply_id] = reply
        self.stats.replies += 1
        self._pending = reply
        if self._joinable is not None and self._joinable.turn_id == reply.turn_id:
            self._joinable.reply = reply
        self._put(AgentReplyStarted(reply_id, reply.turn_id, reply.kind, reply.required_text, self.clock()))
        self._spawn(self._play(reply), "reply")

    def _on_clause(self, reply: Reply, item: ClauseItem) -> None:
        """Called just before a clause's AgentText is queued (gate open)."""
        if reply.cancelled:
            return
        if self._pending is reply:
            self._pending = None
            self._reply = reply
            # what the host asks to say may start while the patient is talking: no state then
            self._set_state(S.AGENT_SPEAKING, "reply", turn_id=reply.turn_id, force=reply.said)
        if item.role == "ack":
            self._recent_acks = [*self._recent_acks[-7:], item.text]
        elif item.role == "required" and reply.items_sent == 1:
            self._recent_acks = [*self._recent_acks[-7:], NO_ACK]  # the question led
        if item.carries_prompt and reply.ctx.answer_index < 0:
            reply.ctx.answer_index = reply.items_sent - 1
        for name, t in reply.ctx.marks.items():
            self._mark(reply.turn_id, name, t)

    def _on_render(self, reply: Reply, item: ClauseItem, t0: float, t1: float, cached: bool) -> None:
        if item.carries_prompt:
            reply.ctx.marks.setdefault("tts_start", t0)
            reply.ctx.marks.setdefault("tts_first_audio", t1)

    async def _play(self, reply: Reply) -> None:
        """Wait for the reply to be sent and played out, then close it."""
        completed = await reply.finished
        if not completed or reply.cancelled:
            return  # cancelled: the interrupt / escalation path reports it
        for name, t in reply.ctx.marks.items():  # timings that came after the last clause
            self._mark(reply.turn_id, name, t)
        if reply.error is not None:
            self._put(
                PipelineError("reply", type(reply.error).__name__, str(reply.error)[:200], self.clock())
            )
        if self._pending is reply:  # produced no audio at all
            self._pending = None
            self._reply = reply
        await self._outbox.drain()
        ev = self._played_event.setdefault(reply.reply_id, asyncio.Event())
        while not reply.cancelled:
            played = self._played.get(reply.reply_id, 0.0)
            if played >= reply.timeline.sent_ms - 1.0:
                break
            now = self.clock()
            held_s = now - self._held_since if self._held_since is not None else 0.0
            remaining = self._playback_end + held_s - now
            if remaining <= 0:
                break
            ev.clear()
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                # Not done yet: a hold (or one that ended meanwhile, _release shifted the
                # estimate by its length) moves the end; the loop re-reads it and exits when
                # the estimate has really passed. Breaking here ended the reply one
                # hold-length early, so speech in that stretch was no barge-in.
                continue
        if reply.cancelled:
            return
        self._finish_reply(reply, interrupted=False, text=reply.timeline.text_sent())

    def _abandon(self, reply: Reply) -> None:
        """Cancel an opened reply that has not been heard yet (no audio sent)."""
        reply.cancel()
        if reply.reply_id in self._open_replies:
            self._finish_reply(reply, interrupted=True, text="", final=True)

    def _finish_reply(self, reply: Reply, *, interrupted: bool, text: str, final: bool = False) -> None:
        if self._open_replies.pop(reply.reply_id, None) is None:
            return  # already reported
        now = self.clock()
        heard = self._heard_ms(reply.reply_id, interrupted)
        self._put(
            AgentReplyFinished(
                reply.reply_id, reply.turn_id, text, interrupted, reply.fallback_used, now, heard
            )
        )
        if text:
            self._history.append(("agent", text))
        self._played_event.pop(reply.reply_id, None)
        self._played_at.pop(reply.reply_id, None)
        self._played.pop(reply.reply_id, None)
        if self._reply is reply:
            self._reply = None
        if not reply.said and (reply.turn_id in self._telemetry or reply.turn_id == 0):
            tel = self._telemetry.pop(reply.turn_id, None) or self._tel(reply.turn_id)
            self._telemetry.pop(reply.turn_id, None)
            tel.interrupted = tel.interrupted or interrupted
            tel.fallback_used = reply.fallback_used
            self._put(tel.finish(now))
        if interrupted or final:
            return
        if reply.said and (self._call.escalated or self._turns.state is not S.AGENT_SPEAKING):
            return  # started while the patient talked, or the call escalated: leave the turn as it is
        if self._joinable is not None and self._joinable.reply is reply:
            self._joinable = None  # heard to its end: what the caller says next answers it
        turn = self._turn
        if turn is not None:
            turn.join = None
        if turn is not None and turn.overlap and not turn.ended:
            # The patient was already talking as the agent finished: that is their turn now.
            turn.overlap = False
            self._set_state(S.LISTENING, "reply_done", turn_id=reply.turn_id)
            self._set_state(S.USER_SPEAKING, "speech_continues", turn_id=turn.turn_id)
            self._rec.recheck_endpoint(turn)
        else:
            self._set_state(S.LISTENING, "reply_done", turn_id=reply.turn_id)

    def _heard_ms(self, reply_id: int, interrupted: bool) -> float | None:
        """Milliseconds of a finished reply the patient heard (None: unknown).

        A reply that played to its end played all the audio the host took for it: the client's
        report usually arrives after the session has closed the reply (its playback estimate has
        no allowance for network and buffering), so the report cannot be waited for. An
        interrupted reply played what the client reported after the stop."""
        sent = self._sent_ms.pop(reply_id, None)
        reported = self._reports.pop(reply_id, None)
        if not interrupted:
            return round(sent, 1) if sent is not None else reported
        if reported is None:
            return None
        return round(min(reported, sent), 1) if sent is not None else reported

    # --- barge-in -------------------------------------------------------------------------

    def _interruptible_reply(self) -> Reply | None:
        """The reply speech over the agent may hold or cancel, if any."""
        reply = self._reply
        if reply is None or reply.cancelled or not self.config.barge_in:
            return None
        if reply.said and not reply.interruptible:
            return None
        if reply.kind == "emergency" and not self.config.interrupt_emergency_script:
            return None
        return reply

    def _hold(self, turn: _Turn) -> None:
        """Fast stop signal: speech has gone on over the agent for ``barge_in_pause_ms``. The
        host holds playback (keeps its buffer) while the words decide: a backchannel resumes
        it (:meth:`_release`), a real interruption cancels it (:meth:`_interrupt`)."""
        reply = self._interruptible_reply()
        if reply is None:
            return
        now = self.clock()
        turn.held_reply = reply.reply_id
        self._held_since = now
        self.stats.barge_in_pauses += 1
        self._put(AgentPaused(reply.reply_id, reply.turn_id, turn.speech_start, now))
        self._mark(turn.turn_id, "barge_in_onset", turn.speech_start)
        self._mark(turn.turn_id, "barge_in_paused", now)

    def _release(self, turn: _Turn) -> None:
        """The burst that held the agent was not an interruption: play on."""
        reply_id, turn.held_reply = turn.held_reply, None
        held_since, self._held_since = self._held_since, None
        if reply_id is None or held_since is None:
            return
        now = self.clock()
        held_s = now - held_since
        # the host played nothing meanwhile: its queue ends that much later
        self._playback_end += held_s
        if reply_id in self._playback_start:
            self._playback_start[reply_id] += held_s
        reply = self._reply
        if reply is not None and reply.reply_id == reply_id and not reply.cancelled:
            self.stats.barge_in_resumes += 1
            self._put(AgentResumed(reply_id, reply.turn_id, round(held_s * 1000.0, 1), now))

    def _interrupt(self, turn: _Turn, reason: str) -> None:
        reply = self._interruptible_reply()
        if reply is None or turn.barge_in:
            return
        now = self.clock()
        turn.barge_in = True
        turn.overlap = False
        turn.held_reply = None
        self._held_since = None
        self.stats.barge_ins += 1
        self.stats.barge_in_reasons[reason] = self.stats.barge_in_reasons.get(reason, 0) + 1
        reply.interrupted = True
        reply.cancel()
        self._playback_end = now  # the host flushes its audio queue
        # Audio still queued for the host is dropped so the stop is not stuck behind it.
        self._outbox.purge(lambda e: isinstance(e, AgentAudio | AgentText) and e.reply_id == reply.reply_id)
        self._put(AgentInterrupted(reply.reply_id, reply.turn_id, turn.speech_start, now))
        self._mark(turn.turn_id, "barge_in_onset", turn.speech_start, overwrite=True)
        self._mark(turn.turn_id, "interrupted", now)
        self._tel(reply.turn_id).interrupted = True
        self._set_state(S.INTERRUPTED, f"barge_in:{reason}", turn_id=turn.turn_id)
        self._set_state(S.USER_SPEAKING, "speech_continues", turn_id=turn.turn_id)
        self._reply = None
        self._spawn(self._finish_interrupted(reply, now), "reply")
        join, turn.join = turn.join, None
        if join is not None:
            self._join(turn, join)
        self._joinable = None
        # The burst is the patient's turn now; if it is already in a pause, judge its end.
        self._rec.recheck_endpoint(turn)

    async def _finish_interrupted(self, reply: Reply, t_interrupt: float) -> None:
        # Wait for the host's report sent *after* the interruption (an earlier one only
        # said the audio queue ran dry while the reply was still being produced).
        ev = self._played_event.setdefault(reply.reply_id, asyncio.Event())
        deadline = t_interrupt + self.config.playback_report_timeout_ms / 1000.0
        while self._played_at.get(reply.reply_id, -1.0) < t_interrupt:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            ev.clear()
            try:
                await asyncio.wait_for(ev.wait(), remaining)
            except TimeoutError:
                break
        if self._played_at.get(reply.reply_id, -1.0) >= t_interrupt:
            played = self._played[reply.reply_id]
        else:
            played = self._estimate_played(reply, at=t_interrupt)
        self._finish_reply(reply, interrupted=True, text=reply.timeline.text_played(played))

    def _estimate_played(self, reply: Reply, at: float | None = None) -> float:
        start = self._playback_start.get(reply.reply_id)
        if start is None:
            return 0.0
        at = self.clock() if at is None else at
        return max(0.0, min(reply.timeline.sent_ms, (at - start) * 1000.0))


# --- helpers ------------------------------------------------------------------------------


def _to_dict(assessment: Assessment) -> dict[str, Any]:
    try:
        return dict(assessment.to_dict())
    except Exception:  # the detail is for the record; the assessment itself still counts
        log.exception("assessment.to_dict failed")
        return {}


def _same_prompt(a: Prompt, b: Prompt) -> bool:
    return (a.kind, a.text, a.fixed) == (b.kind, b.text, b.fixed)


# Spoken only if a policy escalates without giving its own fixed script (a policy bug,
# reported as PipelineError): silence would be the worst possible answer to an emergency.
EMERGENCY_FALLBACK = "This may be an emergency. Please hang up and call 911 now."


def _emergency_prompt(policy: DialoguePolicy, assessment: Assessment, detail: dict) -> Prompt | None:
    """The fixed script to speak on escalation: the assessment's next prompt, or the
    policy's next prompt (the rules put the emergency script first once escalated)."""
    for candidate in (assessment.next_question, None):
        prompt = candidate if candidate is not None else policy.next_prompt()
        if prompt is not None and prompt.fixed and prompt.text.strip():
            return prompt
    return None


__all__ = ["VoiceSession", "SessionStats", "StateChanged"]
