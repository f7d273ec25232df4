"""Recognition: what the caller says and when their turn ends.

    frames ─► VAD ─► segmenter ─► streaming transcriber (partials)
                         │               │
                         └─► pause decodes (early / at the pause) ─► endpoint ─► end of turn

``AudioRecognition`` owns this path and nothing the agent says; it reports through
``RecognitionHooks``, the seam LiveKit Agents draws between ``AudioRecognition`` and
``AgentActivity``. The session (voice/pipeline.py) implements the hooks: it decides whether a
burst is over the agent (barge-in), what a pause's words start (speculation) and what an ended
turn is answered with. Everything here is cheap per-frame work on the event loop; decodes run
on the session's compute pool as tasks the session can cancel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from voice import speech_filter
from voice.audio import AcousticMonitor, FrameBuffer, pcm16_to_float32
from voice.config import PipelineConfig
from voice.endpointing import EndpointConfig, EndpointPolicy, reliable_words, words_of
from voice.events import AcousticAnomaly, PartialTranscript, SpeechPaused, SpeechResumed, SpeechStarted
from voice.interfaces import Transcription
from voice.vad import SegmenterConfig, SpeechSegmenter, TurnAudio, WebRtcVad

log = logging.getLogger(__name__)

_MAX_AUDIO_LAG_S = 2.0
_JOIN_TAIL_S = 0.3  # the earlier turn's audio is kept to this long after its last word
_QUICK_START_LEVEL_S = 0.2  # a quick start's level: the voiced frames of the segmenter's start window

Spawn = Callable[[Coroutine, str], asyncio.Task]


@dataclass
class RecognizedTurn:
    """One burst of the caller's speech, from its onset to its end of turn (or its drop)."""

    turn_id: int
    speech_start: float
    overlap: bool  # began while the agent was speaking and is not (yet) an interruption
    transcriber: Any  # voice.asr.StreamingTranscriber
    epoch: int = 0  # bumped at every pause and resume
    ended: bool = False
    pause_decode: asyncio.Task | None = None
    pause_epoch: int = -1
    pause_result: Transcription | None = None
    pause_started: float | None = None
    pause_done: float | None = None
    latest_partial: str | None = None
    pause_decode_due: bool = False  # open statement: decode once the pause is long enough
    # An answer's decode started in the hangover, before the pause is declared (the token
    # identifies it; a voiced frame before the pause makes it stale).
    early_token: object | None = None
    early_task: asyncio.Task | None = None
    early_started: float | None = None
    early_result: Transcription | None = None  # back before the pause: used at the pause
    early_epoch: int | None = None  # the pause it decodes (set when the pause comes)
    non_speech_partials: int = 0  # partials judged invented (dropped)
    partial_anomaly: bool = False  # one of them was counted as an acoustic anomaly


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """Hook payload: the endpoint (or the session) ended ``turn``."""

    turn: RecognizedTurn
    reason: str
    audio: TurnAudio | None  # the turn's audio (None: the segmenter had none)
    anomalies: tuple[AcousticAnomaly, ...]  # judged over the whole turn (clipping, low level)
    t: float


class RecognitionHooks(Protocol):
    """What recognition reports; the session implements it (LiveKit's ``RecognitionHooks``)."""

    def on_speech_started(self, ev: SpeechStarted) -> None:
        """Speech began: the hook opens the turn (:meth:`AudioRecognition.open_turn`), since
        only the session knows whether the agent is talking over it."""

    def on_speech_paused(self, ev: SpeechPaused, turn: RecognizedTurn | None) -> bool:
        """The burst paused (``turn``: the open turn, if any). True: the session took the pause
        (it ended the turn), so no pause decode starts."""

    def on_speech_resumed(self, ev: SpeechResumed, turn: RecognizedTurn | None) -> None: ...

    def on_overlap_speech(self, turn: RecognizedTurn) -> None:
        """A voiced frame of a burst over the agent: the barge-in gate's cue."""

    def on_partial(self, turn: RecognizedTurn, partial: PartialTranscript) -> None:
        """A partial that passed the speech filter (over the agent: unfiltered)."""

    def on_overlap_words(self, turn: RecognizedTurn, result: Transcription) -> None:
        """A pause decode of a burst over the agent: interrupt, or let it play on."""

    def on_pause_words(self, turn: RecognizedTurn, epoch: int, result: Transcription) -> None:
        """The words of the turn so far, at a pause, before the endpoint sees them."""

    def on_no_words(self, turn: RecognizedTurn) -> None:
        """The burst held no words (noise): it is closed and is no turn."""

    def on_burst_closed(self, turn: RecognizedTurn) -> None:
        """The burst ended without a turn (noise, a backchannel)."""

    def on_end_of_turn(self, ended: TurnEnded) -> None: ...

    def on_anomaly(self, anomaly: AcousticAnomaly, *, of_turn: bool) -> None:
        """``of_turn``: it counts in the turn's telemetry too."""

    def on_frame_error(self, exc: Exception) -> None: ...

    def escalation_pending(self) -> bool:
        """An emergency script waits for the caller's pause (the turn ends there, undecoded)."""

    def hold_armed(self) -> bool:
        """Speech starting now would hold the agent (it is speaking an interruptible reply):
        the segmenter then starts a burst on less voice (``quick_start_voiced_ms``)."""


class AudioRecognition:
    """Frames → VAD → segmenter → transcriber → pause decodes → endpoint, for one call."""

    def __init__(
        self,
        runtime,
        config: PipelineConfig,
        compute,
        hooks: RecognitionHooks,
        stats,
        *,
        clock: Callable[[], float],
        spawn: Spawn,
    ):
        cfg = self.config = config
        self.runtime = runtime
        self.hooks = hooks
        self.stats = stats  # the session's SessionStats: recognition's counters are its own
        self.clock = clock
        self._spawn = spawn
        self._compute = compute
        self._asr_executor = compute.executor(
            lambda fn: "partial" if getattr(fn, "kwargs", {}).get("partial") else None
        )
        self._frame_s = cfg.frame_ms / 1000.0
        self._frames = FrameBuffer(cfg.sample_rate, cfg.frame_ms)
        self._vad = WebRtcVad(cfg.sample_rate, cfg.frame_ms, cfg.vad_aggressiveness)
        self._seg = SpeechSegmenter(
            SegmenterConfig(
                sample_rate=cfg.sample_rate,
                frame_ms=cfg.frame_ms,
                hangover_ms=cfg.vad_hangover_ms,
                resume_voiced_ms=cfg.vad_resume_ms,
                # over the agent a burst starts when it would hold it (not 120 ms in)
                quick_start_voiced_ms=cfg.barge_in_pause_ms or SegmenterConfig.start_voiced_ms,
            )
        )
        self._endpoint = EndpointPolicy(
            EndpointConfig(
                complete_silence_ms=cfg.endpoint_complete_ms,
                long_silence_ms=cfg.endpoint_incomplete_ms,
                max_turn_ms=cfg.max_turn_ms,
            )
        )
        self._acoustic = AcousticMonitor(sample_rate=cfg.sample_rate)
        self._next_audio_t: float | None = None
        self.last_frame_end = 0.0
        self.turn: RecognizedTurn | None = None
        self._closed = False
        # The caller is describing the problem (first statement, or after an open prompt):
        # the endpoint gives clause pauses more patience (EndpointPolicy, open_statement).
        self.open_statement = True

    # --- what the session reads -----------------------------------------------------------

    @property
    def turn_id(self) -> int:
        """The open turn's id, else the segmenter's (the last turn's)."""
        return self.turn.turn_id if self.turn else self._seg.turn_id

    @property
    def speaking(self) -> bool:
        return self._seg.state == SpeechSegmenter.SPEAKING

    @property
    def paused(self) -> bool:
        return self._seg.state == SpeechSegmenter.PAUSED

    @property
    def voiced_ms(self) -> float:
        return self._seg.voiced_ms

    @property
    def unvoiced_ms(self) -> float:
        return self._seg.unvoiced_ms

    def recent_voiced_dbfs(self, since: float) -> float:
        return self._acoustic.recent_voiced_dbfs(since)

    def quiet_ms(self, below_dbfs: float) -> float:
        """How long the latest frames have been quieter than ``below_dbfs``."""
        return self._acoustic.quiet_ms(below_dbfs)

    def reliable_words(self, text: str, avg_logprob: float, no_speech_prob: float) -> str:
        cfg = self.config
        return reliable_words(
            text,
            avg_logprob,
            no_speech_prob,
            min_logprob=cfg.barge_in_min_logprob,
            max_no_speech=cfg.barge_in_max_no_speech,
        )

    # --- audio in -------------------------------------------------------------------------

    def push_audio(self, pcm: bytes) -> None:
        """16 kHz s16le mono, any length: each whole frame is processed now."""
        frames = list(self._frames.push(pcm))
        if not frames:
            return
        now = self.clock()
        for frame in frames:
            # Capture time of the frame: the audio is contiguous, so it is the previous
            # frame's end; frames that waited (network, a busy loop) keep their earlier
            # time. Audio can never be newer than its arrival: if it comes in faster than
            # real time (a file, --fast), the timeline is pulled back to the clock.
            # A timeline more than 2 s behind means the client stopped sending for a while
            # (muted, reconnected): start again from the clock.
            t = self._next_audio_t if self._next_audio_t is not None else now - self._frame_s
            if t + self._frame_s > now or now - t > _MAX_AUDIO_LAG_S:
                t = now - self._frame_s
            self._next_audio_t = t + self._frame_s
            try:
                self._on_frame(frame, t)
            except Exception as exc:  # a bug in a cheap stage must not kill the session
                log.exception("frame processing failed")
                self.hooks.on_frame_error(exc)

    def _on_frame(self, frame: bytes, t: float) -> None:
        is_speech = self._vad.is_speech(frame)
        self.last_frame_end = t + self._frame_s
        for anomaly in self._acoustic.feed(
            pcm16_to_float32(frame), is_speech=is_speech, t=t, turn_id=self.turn_id
        ):
            self.hooks.on_anomaly(anomaly, of_turn=False)
        if not self._seg.in_turn:
            # Speech over the agent starts a burst (and holds the agent) on less voice, if it
            # is loud enough to hold: webrtcvad's quiet 80 ms blips in a noise floor do not.
            self._seg.quick_start = (
                is_speech
                and self.hooks.hold_armed()
                and self._acoustic.recent_voiced_dbfs(self.last_frame_end - _QUICK_START_LEVEL_S)
                >= self.config.barge_in_hold_min_dbfs
            )
        for ev in self._seg.feed(frame, is_speech, t):
            if isinstance(ev, SpeechStarted):
                self.hooks.on_speech_started(ev)
            elif isinstance(ev, SpeechPaused):
                self._on_speech_paused(ev)
            elif isinstance(ev, SpeechResumed):
                self._on_speech_resumed(ev)
        turn = self.turn
        if turn is None or turn.ended or not self._seg.in_turn:
            return
        if (
            turn.pause_decode_due
            and self.paused
            and self._seg.silence_ms(self.last_frame_end) >= self.config.open_pause_decode_ms
        ):
            self.start_pause_decode(turn)
        if self.speaking:
            # Silence in a pause is held back (the segmenter keeps it) and handed over if the
            # patient resumes: partial decodes of silence would only delay the pause decode.
            turn.transcriber.push(self._seg.take_new_audio())
            if not turn.overlap:
                self._early_pause_decode(turn)
        if turn.overlap and self.speaking:
            self.hooks.on_overlap_speech(turn)
        self.check_endpoint(self.last_frame_end)

    # --- turns ----------------------------------------------------------------------------

    def open_turn(
        self, ev: SpeechStarted, *, overlap: bool, turn_type: type[RecognizedTurn] = RecognizedTurn
    ) -> RecognizedTurn:
        """Called by the session's ``on_speech_started``: the burst's turn and transcriber
        (``turn_type``: the session's subclass, with what it keeps about the turn)."""
        transcriber = self._new_transcriber(ev.turn_id, overlap=overlap)
        turn = self.turn = turn_type(ev.turn_id, ev.t, overlap, transcriber)
        return turn

    def _new_transcriber(self, turn_id: int, *, overlap: bool = False, joined: bool = False):
        from voice.asr import StreamingConfig, StreamingTranscriber

        cfg = self.config
        # Over the agent: frequent cheap partials, so a "Wait." is heard ~0.3 s into the burst.
        interval = min(cfg.partial_interval_ms, cfg.barge_in_partial_interval_ms) if overlap else None
        return StreamingTranscriber(
            self.runtime.recognizer,
            turn_id=turn_id,
            executor=self._asr_executor,
            config=StreamingConfig(
                partial_interval_ms=interval or cfg.partial_interval_ms,
                full_window=overlap and cfg.barge_in_full_window,
                catch_up=overlap,  # over the agent the next partial decides: no idle interval
            ),
            on_partial=lambda p, tid=turn_id: self._on_partial(tid, p),
            # a joined turn's audio is two stretches: no one session time for its start
            audio_start=None if joined else self._seg.audio_start,
            clock=self.clock,
        )

    def join(self, turn: RecognizedTurn, audio: TurnAudio) -> None:
        """``turn`` continues the turn that ended with ``audio``: a transcriber that hears the
        earlier words, then all of this burst so far."""
        keep = int((audio.speech_end - audio.audio_start + _JOIN_TAIL_S) * audio.sample_rate)
        old, turn.transcriber = turn.transcriber, self._new_transcriber(turn.turn_id, joined=True)
        old.close()
        turn.transcriber.push(audio.audio[: max(0, keep)])
        self._seg.take_new_audio()  # what the burst's transcriber already had is pushed whole
        turn.transcriber.push(self._seg.turn_audio().copy())
        turn.latest_partial = None
        turn.speech_start = audio.speech_start
        turn.epoch += 1  # a decode of the burst alone is stale now
        if self.paused:
            self.start_pause_decode(turn)

    def _on_speech_paused(self, ev: SpeechPaused) -> None:
        turn = self.turn
        if turn is not None and turn.ended:
            turn = None
        if turn is not None:
            turn.epoch += 1
        if self.hooks.on_speech_paused(ev, turn) or turn is None:
            return
        if not turn.overlap and turn.early_token is not None:
            # The decode of this pause started in the hangover: no second one.
            turn.pause_epoch = turn.early_epoch = turn.epoch
            turn.pause_result = None
            turn.pause_started = turn.early_started
            turn.pause_decode = turn.early_task
            if turn.early_result is not None:
                self._on_pause_result(turn, turn.epoch, turn.early_result)
            return
        if not turn.overlap and self.open_statement and self.config.open_pause_decode_ms > 0:
            # An open statement cannot end before open_closing_silence_ms (600 ms): its short
            # clause pauses need no decode, and under load those final-quality decodes
            # and the speculative synthesis after them queued ahead of other callers' finals.
            turn.pause_decode_due = True
            return
        self.start_pause_decode(turn)

    def _on_speech_resumed(self, ev: SpeechResumed) -> None:
        turn = self.turn
        if turn is not None and turn.ended:
            turn = None
        if turn is not None:
            turn.epoch += 1
            turn.pause_decode_due = False
            turn.early_token = None
        self.hooks.on_speech_resumed(ev, turn)
        if turn is not None and not turn.overlap:
            # A pause decode still waiting for a worker is stale now: free the CPU for others.
            self._compute.cancel_queued(_is_final_decode)

    def drop(self, turn: RecognizedTurn) -> None:
        """Stop the turn's decodes (the call is ending)."""
        if turn.pause_decode is not None:
            turn.pause_decode.cancel()
        turn.transcriber.close()

    def close(self) -> None:
        self._closed = True

    # --- decodes --------------------------------------------------------------------------

    def start_pause_decode(self, turn: RecognizedTurn) -> None:
        """Final-quality decode of the turn so far: the endpoint policy needs fresh words, an
        overlapping burst needs judging, and with speculation it is the final pass itself."""
        turn.pause_decode_due = False
        turn.pause_epoch = turn.epoch
        turn.pause_result = None
        turn.pause_started = self.clock()
        turn.pause_decode = self._spawn(self._pause_decode(turn, turn.epoch), "asr_final")

    def _on_partial(self, turn_id: int, partial: PartialTranscript) -> None:
        turn = self.turn
        if turn is None or turn.turn_id != turn_id or turn.ended or self._closed:
            return
        if not turn.overlap and self._non_speech_partial(turn, partial):
            return
        turn.latest_partial = partial.text
        self.hooks.on_partial(turn, partial)

    def _early_pause_decode(self, turn: RecognizedTurn) -> None:
        """An answer's pause decode, started ``early_pause_decode_ms`` into the unvoiced run
        rather than at the pause (hangover, 200 ms): a bare "No." then ends the turn as the
        pause is declared instead of one decode later. A voiced frame first makes it stale."""
        cfg = self.config
        if self._seg.unvoiced_ms == 0:
            turn.early_token = None  # voiced again: not a pause (a decode in flight is stale)
            return
        if (
            turn.early_token is not None
            or cfg.early_pause_decode_ms <= 0
            or self.open_statement
            or self.hooks.escalation_pending()
            or self._seg.unvoiced_ms < cfg.early_pause_decode_ms
        ):
            return
        token = turn.early_token = object()
        turn.early_result = turn.early_epoch = None
        turn.early_started = self.clock()
        decode = turn.transcriber.start_speculative_final()  # the audio up to this frame
        turn.early_task = self._spawn(self._early_decode(turn, token, decode), "asr_final")

    async def _early_decode(self, turn: RecognizedTurn, token: object, decode: asyncio.Future) -> None:
        result = await asyncio.shield(decode)
        if turn.ended or self.turn is not turn or turn.early_token is not token:
            return
        if turn.early_epoch is None:
            turn.early_result = result  # the pause is not declared yet: it takes this then
            return
        self._on_pause_result(turn, turn.early_epoch, result)

    async def _pause_decode(self, turn: RecognizedTurn, epoch: int) -> None:
        result = await turn.transcriber.speculative_final()
        if turn.ended or self.turn is not turn:
            return
        if turn.overlap:
            # Over the agent, words are words even if the patient has gone on since.
            self.hooks.on_overlap_words(turn, result)
            if turn.overlap or turn.ended:
                return  # still over the agent (the next pause decides), or closed as noise
        self._on_pause_result(turn, epoch, result)

    def _on_pause_result(self, turn: RecognizedTurn, epoch: int, result: Transcription) -> None:
        if turn.ended or self.turn is not turn or turn.epoch != epoch:
            return  # the patient went on: a newer decode counts
        turn.pause_result = result
        turn.pause_done = self.clock()
        if not words_of(result.text) or self.non_speech(turn.turn_id, result):
            self.stats.noise_turns += 1
            self.close_burst(turn)
            self.hooks.on_no_words(turn)
            return
        self.hooks.on_pause_words(turn, epoch, result)  # before the endpoint check: it may end the turn now
        self.check_endpoint(self.last_frame_end)

    async def final_decode(self, turn: RecognizedTurn) -> Transcription:
        """The final pass after the endpoint (speculation off, or nothing usable yet)."""
        return await self._compute.run(self.runtime.recognizer.transcribe, turn.transcriber.audio.copy())

    # --- judging words --------------------------------------------------------------------

    def non_speech(self, turn_id: int, result: Transcription) -> bool:
        """True (and an acoustic anomaly counted) when a decode's words are not speech
        (voice/speech_filter.py): they must not become a turn or reach the rules."""
        verdict = speech_filter.judge(result.text, result.avg_logprob, result.no_speech_prob)
        if verdict.speech:
            return False
        self.stats.non_speech_turns += 1
        self.hooks.on_anomaly(
            AcousticAnomaly(turn_id, "non_speech", verdict.value, self.clock(), verdict.reason), of_turn=True
        )
        return True

    def _non_speech_partial(self, turn: RecognizedTurn, partial: PartialTranscript) -> bool:
        """True when a partial's words are not speech (the same filter as finals): it must not
        reach captions, the dashboard or the rules, so a hallucinated red flag from noise never
        alerts. One per turn is counted as an acoustic anomaly (a burst of noise yields a
        partial every few hundred ms), and not a lone word: the first partial of real speech is
        often an unsure guess at its first syllable ("I," at -1.7), dropped at no cost."""
        verdict = speech_filter.judge_partial(partial.text, partial.avg_logprob, partial.no_speech_prob)
        if verdict.speech:
            return False
        self.stats.non_speech_partials += 1
        turn.non_speech_partials += 1
        if not turn.partial_anomaly and len(words_of(partial.text)) >= 2:
            turn.partial_anomaly = True
            self.hooks.on_anomaly(
                AcousticAnomaly(
                    turn.turn_id, "non_speech", verdict.value, self.clock(), verdict.reason, on_partial=True
                ),
                of_turn=False,
            )
        return True

    # --- end of turn ----------------------------------------------------------------------

    def close_burst(self, turn: RecognizedTurn) -> None:
        """The burst is no turn (noise, a backchannel over the agent)."""
        self._seg.end_turn()
        turn.ended = True
        turn.transcriber.close()
        self.hooks.on_burst_closed(turn)
        if self.turn is turn:
            self.turn = None

    def check_endpoint(self, now: float) -> None:
        turn = self.turn
        if turn is None or turn.ended or turn.overlap:
            return
        fresh = turn.pause_result if turn.pause_epoch == turn.epoch else None
        decision = self._endpoint.decide(
            silence_ms=self._seg.silence_ms(now),
            transcript=None if fresh is None else fresh.text,
            turn_ms=self._seg.turn_ms(now),
            last_word_prob=fresh.word_probs[-1] if fresh is not None and fresh.word_probs else None,
            open_statement=self.open_statement,
        )
        if decision.end:
            self.end_turn(turn, decision.reason)

    def recheck_endpoint(self, turn: RecognizedTurn) -> None:
        """A burst over the agent became the caller's turn: if it is already in a pause with
        its words decoded, judge its end now."""
        if self.paused and turn.pause_result is not None:
            self.check_endpoint(self.last_frame_end)

    def end_turn(self, turn: RecognizedTurn, reason: str) -> None:
        """End ``turn`` (the endpoint decided, or the session: an emergency script is due)."""
        turn.ended = True
        audio = self._seg.end_turn()
        now = self.clock()
        anomalies = tuple(self._acoustic.end_turn(t=now, turn_id=turn.turn_id))
        if self.turn is turn:
            self.turn = None
        self.hooks.on_end_of_turn(TurnEnded(turn, reason, audio, anomalies, now))


def _is_final_decode(fn) -> bool:
    """A queued final-quality ASR call of the streaming transcriber (not a partial, not TTS)."""
    kwargs = getattr(fn, "kwargs", None)
    return isinstance(kwargs, dict) and hasattr(fn, "audio") and not kwargs.get("partial")


__all__ = ["AudioRecognition", "RecognitionHooks", "RecognizedTurn", "TurnEnded"]
