"""PCM helpers: conversion, framing, validation, resampling, level metering, anomaly checks.

Audio on the wire is 16-bit little-endian mono PCM; inside the pipeline it is float32 in
[-1, 1]. Resampling uses soxr (libsoxr): high quality, fast, and it has a streaming
resampler that keeps filter state between chunks, so a 48 kHz browser stream can be
converted frame by frame without clicks at chunk boundaries.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soxr

from voice.events import AcousticAnomaly

PCM_SAMPLE_WIDTH = 2  # bytes per 16-bit sample
SUPPORTED_RATES = (8000, 16000, 32000, 48000)  # what webrtcvad accepts
_INT16_SCALE = 32768.0
SILENCE_DBFS = -120.0  # reported for all-zero audio instead of -inf


class AudioFormatError(ValueError):
    """Rejected client audio. ``code`` is stable and safe to send back to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- conversion -----------------------------------------------------------------------


def pcm16_to_float32(data: bytes) -> np.ndarray:
    if len(data) % PCM_SAMPLE_WIDTH:
        raise AudioFormatError("odd_length", f"PCM16 data has an odd number of bytes ({len(data)})")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / _INT16_SCALE


def float32_to_pcm16(audio: np.ndarray) -> bytes:
    scaled = np.clip(np.asarray(audio, dtype=np.float32) * _INT16_SCALE, -32768, 32767)
    return np.rint(scaled).astype("<i2").tobytes()


def frame_bytes(sample_rate: int, frame_ms: int) -> int:
    return sample_rate * frame_ms // 1000 * PCM_SAMPLE_WIDTH


# --- framing and validation -----------------------------------------------------------


def validate_pcm_frame(
    data: bytes,
    sample_rate: int,
    allowed_frame_ms: tuple[int, ...] = (10, 20, 30),
    allowed_rates: tuple[int, ...] = SUPPORTED_RATES,
) -> int:
    """Check one client frame; return its duration in ms or raise :class:`AudioFormatError`."""
    if sample_rate not in allowed_rates:
        raise AudioFormatError("unsupported_rate", f"sample rate {sample_rate} not in {allowed_rates}")
    if not data:
        raise AudioFormatError("empty_frame", "empty audio frame")
    if len(data) % PCM_SAMPLE_WIDTH:
        raise AudioFormatError("odd_length", f"PCM16 frame has an odd number of bytes ({len(data)})")
    for ms in allowed_frame_ms:
        if len(data) == frame_bytes(sample_rate, ms):
            return ms
    raise AudioFormatError(
        "bad_frame_size",
        f"{len(data)} bytes is not a {allowed_frame_ms} ms frame at {sample_rate} Hz",
    )


def split_frames(data: bytes, sample_rate: int, frame_ms: int) -> tuple[list[bytes], bytes]:
    """Cut PCM16 into whole frames; return (frames, leftover bytes)."""
    size = frame_bytes(sample_rate, frame_ms)
    whole = len(data) - len(data) % size
    return [data[i : i + size] for i in range(0, whole, size)], data[whole:]


class FrameBuffer:
    """Re-chunks a PCM16 byte stream of any chunk size into fixed frames (keeps the remainder)."""

    def __init__(self, sample_rate: int, frame_ms: int) -> None:
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self._size = frame_bytes(sample_rate, frame_ms)
        self._pending = bytearray()

    def push(self, data: bytes) -> Iterator[bytes]:
        self._pending += data
        while len(self._pending) >= self._size:
            frame = bytes(self._pending[: self._size])
            del self._pending[: self._size]
            yield frame

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)


# --- resampling -----------------------------------------------------------------------


def resample(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot float32 resampling (whole clip)."""
    audio = np.asarray(audio, dtype=np.float32)
    if in_rate == out_rate:
        return audio
    return soxr.resample(audio, in_rate, out_rate, quality="HQ").astype(np.float32, copy=False)


def resample_pcm16(data: bytes, in_rate: int, out_rate: int) -> bytes:
    if in_rate == out_rate:
        return data
    return float32_to_pcm16(resample(pcm16_to_float32(data), in_rate, out_rate))


class StreamResampler:
    """Chunk-by-chunk resampler for a live stream; filter state carries across chunks.

    Output lags input by the filter delay (a few ms) and chunk sizes vary by a sample or
    so; feed the output through :class:`FrameBuffer` to get fixed frames again.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")
        )

    def process(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=last)

    def process_pcm16(self, data: bytes, last: bool = False) -> bytes:
        return float32_to_pcm16(self.process(pcm16_to_float32(data), last=last))


# --- levels ---------------------------------------------------------------------------


def _to_db(value: float) -> float:
    return SILENCE_DBFS if value <= 0 else max(SILENCE_DBFS, 20.0 * math.log10(value))


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level relative to a full-scale square wave (0 dBFS); -120 for silence."""
    if audio.size == 0:
        return SILENCE_DBFS
    return _to_db(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))))


def peak_dbfs(audio: np.ndarray) -> float:
    if audio.size == 0:
        return SILENCE_DBFS
    return _to_db(float(np.max(np.abs(audio))))


@dataclass(frozen=True, slots=True)
class LevelReading:
    rms_dbfs: float
    peak_dbfs: float


def measure(audio: np.ndarray) -> LevelReading:
    return LevelReading(rms_dbfs(audio), peak_dbfs(audio))


# --- acoustic anomalies ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnomalyConfig:
    clip_level: float = 32700 / _INT16_SCALE  # |sample| at or above this counts as clipped
    clip_ratio: float = 0.01  # >1% of voiced samples clipped: the mic gain is too high
    dead_mic_s: float = 3.0  # digital silence this long while connected: mic muted / broken
    dead_mic_level: float = 1.5 / _INT16_SCALE  # |sample| <= 1 LSB counts as digital silence
    low_level_dbfs: float = -45.0  # voiced audio quieter than this: far from the mic
    min_voiced_s: float = 0.3  # judge clipping/level only on turns with this much speech


class AcousticMonitor:
    """Per-session acoustic checks.

    ``feed`` every frame (with the VAD decision); it reports a dead microphone once per
    stretch of digital silence. ``end_turn`` judges the voiced audio of the turn for
    clipping and very low level. Real background noise is never "digital silence", so
    the dead-mic check only fires on a muted or disconnected input.
    """

    def __init__(self, config: AnomalyConfig | None = None, sample_rate: int = 16000) -> None:
        self.config = config or AnomalyConfig()
        self.sample_rate = sample_rate
        self._silent_since: float | None = None
        self._dead_reported = False
        # (t, mean power) of the latest voiced frames, for recent_voiced_dbfs
        self._recent_voiced: collections.deque[tuple[float, float]] = collections.deque(maxlen=15)
        self._levels: collections.deque[tuple[float, float]] = collections.deque(maxlen=15)  # (s, dBFS)
        self._reset_turn()

    def _reset_turn(self) -> None:
        self._voiced_samples = 0
        self._clipped_samples = 0
        self._voiced_energy = 0.0

    def feed(self, audio: np.ndarray, *, is_speech: bool, t: float, turn_id: int) -> list[AcousticAnomaly]:
        cfg = self.config
        out: list[AcousticAnomaly] = []
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak <= cfg.dead_mic_level:
            if self._silent_since is None:
                self._silent_since = t
            silent_for = t - self._silent_since
            if silent_for >= cfg.dead_mic_s and not self._dead_reported:
                self._dead_reported = True
                out.append(AcousticAnomaly(turn_id, "dead_microphone", silent_for, t))
        else:
            self._silent_since = None
            self._dead_reported = False
        energy = float(np.sum(np.square(audio, dtype=np.float64)))
        level = _to_db(math.sqrt(energy / audio.size)) if audio.size else SILENCE_DBFS
        self._levels.append((audio.size / self.sample_rate, level))
        if is_speech and audio.size:
            self._voiced_samples += audio.size
            self._clipped_samples += int(np.count_nonzero(np.abs(audio) >= cfg.clip_level))
            self._voiced_energy += energy
            self._recent_voiced.append((t, energy / audio.size))
        return out

    def recent_voiced_dbfs(self, since: float) -> float:
        """RMS level of the voiced frames fed at or after ``since`` (-120 if none)."""
        powers = [p for t, p in self._recent_voiced if t >= since]
        return _to_db(math.sqrt(sum(powers) / len(powers))) if powers else SILENCE_DBFS

    def quiet_ms(self, below_dbfs: float) -> float:
        """How long the latest frames have been quieter than ``below_dbfs`` (RMS each), up to
        the last 15: the voice has stopped even where webrtcvad still calls its decay speech
        (it does for ~100 ms after the level is down at the noise floor)."""
        quiet_s = 0.0
        for seconds, level in reversed(self._levels):
            if level >= below_dbfs:
                break
            quiet_s += seconds
        return quiet_s * 1000.0

    def end_turn(self, *, t: float, turn_id: int, sample_rate: int = 16000) -> list[AcousticAnomaly]:
        cfg = self.config
        out: list[AcousticAnomaly] = []
        n = self._voiced_samples
        if n and n / sample_rate >= cfg.min_voiced_s:
            ratio = self._clipped_samples / n
            if ratio > cfg.clip_ratio:
                out.append(AcousticAnomaly(turn_id, "clipping", ratio, t))
            level = _to_db(math.sqrt(self._voiced_energy / n))
            if level < cfg.low_level_dbfs:
                out.append(AcousticAnomaly(turn_id, "low_level", level, t))
        self._reset_turn()
        return out
