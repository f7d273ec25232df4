"""Voice activity: WebRTC's frame-level VAD (GMM based, ~3 µs per frame) and a segmenter
that turns its per-frame decisions into debounced speech start / pause / resume events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from voice.audio import SUPPORTED_RATES, AudioFormatError, frame_bytes, pcm16_to_float32
from voice.events import SpeechPaused, SpeechResumed, SpeechStarted


class WebRtcVad:
    """``VoiceActivityDetector`` over webrtcvad.

    ``aggressiveness`` 0 (keeps most audio as speech) to 3 (drops most non-speech).
    2 is a good default for phone/browser audio: 3 starts clipping soft word onsets,
    0-1 let steady background noise through as "speech".
    """

    def __init__(self, sample_rate: int = 16000, frame_ms: int = 20, aggressiveness: int = 2) -> None:
        if sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"webrtcvad supports {SUPPORTED_RATES} Hz, not {sample_rate}")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad frames are 10, 20 or 30 ms, not {frame_ms}")
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"aggressiveness is 0..3, not {aggressiveness}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.aggressiveness = aggressiveness
        self.frame_bytes = frame_bytes(sample_rate, frame_ms)
        # One native instance per detector: webrtcvad keeps state between frames, so a
        # detector belongs to one audio stream (one session).
        self._vad = webrtcvad.Vad(aggressiveness)
        # +-1 LSB of fixed dither on what the VAD sees (not on the audio kept for ASR). Digital
        # silence (exact zeros: synthetic speech, a gated or noise-suppressed microphone) drags
        # webrtcvad's noise estimate to zero, and the room noise that follows then reads as
        # speech for seconds: after Piper's long statements with -70 dBFS noise after them the
        # turn "ended" 1.5-2.5 s late, so the agent answered 2.5-3.5 s after the caller stopped
        # (issue 12, the answer-heard p95 tail). With the dither: 0.11-0.14 s (the hangover).
        n = self.frame_bytes // 2
        self._dither = np.random.default_rng(0).integers(-1, 2, size=n).astype(np.int32)

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != self.frame_bytes:
            raise AudioFormatError(
                "bad_frame_size",
                f"VAD needs {self.frame_bytes}-byte frames ({self.frame_ms} ms at {self.sample_rate} Hz), "
                f"got {len(frame)}",
            )
        samples = np.frombuffer(frame, dtype="<i2").astype(np.int32) + self._dither
        dithered = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
        return self._vad.is_speech(dithered, self.sample_rate)


# --- speech segmentation --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    sample_rate: int = 16000
    frame_ms: int = 20
    start_window_ms: int = 200  # debounce window looked at to start (or resume) speech
    start_voiced_ms: int = 120  # voiced time inside that window needed to declare speech
    # ... while ``quick_start`` is set (the agent is speaking): the burst's start is the
    # barge-in hold, the caller's stop signal, so it comes after 80 ms of voice, not 120 (a
    # blip that starts a burst is judged as noise by the barge-in gate and closed).
    quick_start_voiced_ms: int = 80
    resume_voiced_ms: int = 80  # same, to resume inside a turn (the speaker is already engaged)
    hangover_ms: int = 200  # unvoiced time after the last voiced frame before a pause
    preroll_ms: int = 300  # audio kept before the onset: webrtcvad misses soft onsets ("h", "f")


class _Growable:
    """Append-only float32 buffer with amortised O(1) appends and zero-copy views."""

    def __init__(self, capacity: int = 16000 * 4) -> None:
        self._data = np.empty(capacity, dtype=np.float32)
        self.size = 0

    def append(self, chunk: np.ndarray) -> None:
        need = self.size + chunk.size
        if need > self._data.size:
            grown = np.empty(max(need, self._data.size * 2), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = chunk
        self.size = need

    def view(self, start: int = 0) -> np.ndarray:
        return self._data[start : self.size]


class SpeechSegmenter:
    """Turns per-frame VAD decisions into speech start / pause / resume events.

    ``feed`` one frame at a time with ``t`` = session-clock time of the frame's first
    sample. Event times are onsets (first voiced frame of the debounce window) and ends
    (end of the last voiced frame), not detection times. The segmenter never ends a turn
    itself: the endpoint policy does, and the caller then calls :meth:`end_turn`.

    While a turn is open it buffers the turn's audio (16 kHz float32, from ``preroll_ms``
    before the onset, pauses included) for ASR: :meth:`turn_audio` for all of it,
    :meth:`take_new_audio` for what was added since the last call.
    """

    IDLE, SPEAKING, PAUSED = "idle", "speaking", "paused"

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        cfg = self.config = config or SegmenterConfig()
        self._frame_s = cfg.frame_ms / 1000.0
        self._window = max(1, cfg.start_window_ms // cfg.frame_ms)
        self._start_need = max(1, -(-cfg.start_voiced_ms // cfg.frame_ms))
        self._quick_need = max(1, -(-cfg.quick_start_voiced_ms // cfg.frame_ms))
        self.quick_start = False  # set by the owner while the agent speaks (barge-in)
        self._resume_need = max(1, -(-cfg.resume_voiced_ms // cfg.frame_ms))
        self._hangover = max(1, -(-cfg.hangover_ms // cfg.frame_ms))
        preroll = cfg.preroll_ms // cfg.frame_ms
        # Recent frames (audio, voiced, t) for debounce and pre-roll.
        self._ring: deque[tuple[np.ndarray, bool, float]] = deque(maxlen=self._window + preroll)
        self._preroll = preroll
        self.state = self.IDLE
        self.turn_id = 0
        self._audio = _Growable()
        self._taken = 0
        self._reset_turn()

    def _reset_turn(self) -> None:
        self.speech_start: float | None = None
        self.speech_end: float | None = None
        self.audio_start: float | None = None  # session time of turn_audio()[0]
        self.voiced_ms = 0.0
        self._unvoiced_run = 0
        self._pause_window: deque[tuple[bool, float]] = deque(maxlen=self._window)

    @property
    def in_turn(self) -> bool:
        return self.state != self.IDLE

    def silence_ms(self, now: float) -> float:
        """Silence since the end of the last voiced frame (0 while speaking or idle)."""
        if self.state != self.PAUSED or self.speech_end is None:
            return 0.0
        return max(0.0, (now - self.speech_end) * 1000.0)

    def turn_ms(self, now: float) -> float:
        return 0.0 if self.speech_start is None else (now - self.speech_start) * 1000.0

    @property
    def unvoiced_ms(self) -> float:
        """Unvoiced time since the last voiced frame while still SPEAKING (inside the
        hangover, before a pause is declared); 0 otherwise."""
        if self.state != self.SPEAKING:
            return 0.0
        return self._unvoiced_run * self.config.frame_ms

    def feed(
        self, frame: bytes, is_speech: bool, t: float
    ) -> list[SpeechStarted | SpeechPaused | SpeechResumed]:
        audio = pcm16_to_float32(frame)
        self._ring.append((audio, is_speech, t))
        if self.state == self.IDLE:
            return self._feed_idle(t)
        self._audio.append(audio)
        if self.state == self.SPEAKING:
            return self._feed_speaking(is_speech, t)
        return self._feed_paused(is_speech, t)

    def _feed_idle(self, t: float) -> list:
        window = list(self._ring)[-self._window :]
        if sum(v for _, v, _ in window) < (self._quick_need if self.quick_start else self._start_need):
            return []
        first = next(i for i, (_, v, _) in enumerate(window) if v)
        onset = window[first][2]
        frames = list(self._ring)
        onset_idx = len(frames) - len(window) + first
        start_idx = max(0, onset_idx - self._preroll)
        self.turn_id += 1
        self._audio = _Growable()
        self._taken = 0
        for a, _, _ in frames[start_idx:]:
            self._audio.append(a)
        self.audio_start = frames[start_idx][2]
        self.speech_start = onset
        voiced = [ft for _, v, ft in window[first:] if v]
        self.speech_end = voiced[-1] + self._frame_s
        self.voiced_ms = len(voiced) * self.config.frame_ms
        self.state = self.SPEAKING
        self._unvoiced_run = len(window) - 1 - max(i for i, (_, v, _) in enumerate(window) if v)
        return [SpeechStarted(self.turn_id, onset, t + self._frame_s)]

    def _feed_speaking(self, is_speech: bool, t: float) -> list:
        if is_speech:
            self.voiced_ms += self.config.frame_ms
            self.speech_end = t + self._frame_s
            self._unvoiced_run = 0
            return []
        self._unvoiced_run += 1
        if self._unvoiced_run < self._hangover:
            return []
        self.state = self.PAUSED
        self._pause_window.clear()
        return [SpeechPaused(self.turn_id, self.speech_end)]

    def _feed_paused(self, is_speech: bool, t: float) -> list:
        self._pause_window.append((is_speech, t))
        if sum(v for v, _ in self._pause_window) < self._resume_need:
            return []
        voiced = [ft for v, ft in self._pause_window if v]
        self.voiced_ms += len(voiced) * self.config.frame_ms
        self.speech_end = voiced[-1] + self._frame_s
        self._unvoiced_run = 0 if is_speech else 1
        self.state = self.SPEAKING
        self._pause_window.clear()
        return [SpeechResumed(self.turn_id, voiced[0])]

    def turn_audio(self) -> np.ndarray:
        """The open turn's audio so far (a view: copy it before handing it to another thread)."""
        return self._audio.view() if self.in_turn else np.zeros(0, dtype=np.float32)

    def take_new_audio(self) -> np.ndarray:
        """Audio added to the open turn since the last call (a copy)."""
        if not self.in_turn:
            return np.zeros(0, dtype=np.float32)
        chunk = self._audio.view(self._taken).copy()
        self._taken = self._audio.size
        return chunk

    def end_turn(self) -> TurnAudio | None:
        """Close the open turn (the endpoint policy decided); return its audio and times."""
        if not self.in_turn:
            return None
        turn = TurnAudio(
            turn_id=self.turn_id,
            audio=self._audio.view().copy(),
            sample_rate=self.config.sample_rate,
            audio_start=self.audio_start or 0.0,
            speech_start=self.speech_start or 0.0,
            speech_end=self.speech_end or 0.0,
            voiced_ms=self.voiced_ms,
        )
        self.state = self.IDLE
        self._reset_turn()
        # Frames of the closed turn must not count towards the next onset.
        self._ring.clear()
        return turn


@dataclass(frozen=True, slots=True)
class TurnAudio:
    turn_id: int
    audio: np.ndarray  # float32 mono at sample_rate, pre-roll and pauses included
    sample_rate: int
    audio_start: float  # session time of audio[0]
    speech_start: float
    speech_end: float
    voiced_ms: float
