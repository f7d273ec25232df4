"""Test speech made with the bundled Piper voice, shared by the evals and the tests.

Piper's noise terms are set to zero, so the same text always gives the same audio (and tiny.en
transcribes it the same way every run): evaluations and tests stay deterministic.
"""

from __future__ import annotations

import functools

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


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split into whole frames, zero-padding the last one."""
    if len(pcm) % frame_bytes:
        pcm += b"\x00" * (frame_bytes - len(pcm) % frame_bytes)
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
