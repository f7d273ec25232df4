"""Test speech made with the bundled Piper voice, shared by the evals and the tests.

Piper's noise terms are set to zero, so the same text always gives the same audio (and tiny.en
transcribes it the same way every run): evaluations and tests stay deterministic.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from voice.audio import float32_to_pcm16, pcm16_to_float32, resample

RATE = 16000
FRAME_BYTES = RATE // 50 * 2  # 20 ms of s16le


@functools.cache
def _piper_voice():
    from piper import PiperVoice

    from voice.provisioning import ModelSettings, piper_voice_paths

    onnx, config = piper_voice_paths(ModelSettings.from_env())
    return PiperVoice.load(str(onnx), config_path=str(config))


@functools.lru_cache(maxsize=512)
def synthesize_16k(text: str, length_scale: float = 1.0) -> np.ndarray:
    """Piper speech for ``text`` as 16 kHz float32 (cached per process).

    Piper's noise terms are set to zero so the same text always gives the same audio
    (with them, every call differs and so do Whisper's guesses); ``length_scale`` > 1
    speaks more slowly.
    """
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale)
    chunks = list(voice.synthesize(text, syn_config=config))
    pcm = b"".join(c.audio_int16_bytes for c in chunks)
    audio = resample(pcm16_to_float32(pcm), chunks[0].sample_rate, RATE)
    audio.setflags(write=False)
    return audio


def speech_pcm16k(text: str, length_scale: float = 1.0) -> bytes:
    """16 kHz s16le mono speech of ``text`` (the same every run)."""
    return float32_to_pcm16(synthesize_16k(text, length_scale))


def trim_silence(audio: np.ndarray, threshold: float = 0.004, margin_ms: int = 20) -> np.ndarray:
    """Drop Piper's leading/trailing silence so inserted pauses have the stated length."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    margin = RATE * margin_ms // 1000
    return audio[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


# Where a statement's text has a clause break (after a comma or full stop): Piper pauses there.
CLAUSE_BREAK = re.compile(r"(?<=[,.])\s+")


def clause_breaks(text: str) -> int:
    """How many clause pauses Piper makes inside ``text``."""
    return len(CLAUSE_BREAK.findall(text.strip()))


def quiet_gaps(audio: np.ndarray, threshold: float = 0.004, min_ms: int = 40) -> list[tuple[int, int]]:
    """(start, end) sample ranges of silence inside ``audio`` (10 ms resolution)."""
    hop = RATE // 100
    n = audio.size // hop
    loud = np.abs(audio[: n * hop]).reshape(n, hop).max(axis=1) > threshold
    idx = np.flatnonzero(loud)
    gaps: list[tuple[int, int]] = []
    i = idx[0] if idx.size else n
    last = idx[-1] if idx.size else -1
    while i <= last:
        if loud[i]:
            i += 1
            continue
        j = i
        while j <= last and not loud[j]:
            j += 1
        if (j - i) * 10 >= min_ms:
            gaps.append((i * hop, j * hop))
        i = j
    return gaps


def clause_gaps(speech: np.ndarray, breaks: int) -> list[tuple[int, int]]:
    """The ``breaks`` longest inner silences of ``speech``, in time order: Piper's comma and
    full-stop pauses (200-380 ms) are longer than the gaps inside words (<= 160 ms)."""
    return sorted(sorted(quiet_gaps(speech), key=lambda g: g[0] - g[1])[:breaks])


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split into whole frames, zero-padding the last one."""
    if len(pcm) % frame_bytes:
        pcm += b"\x00" * (frame_bytes - len(pcm) % frame_bytes)
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
