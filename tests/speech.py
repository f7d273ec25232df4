"""Test speech made with the bundled Piper voice (tiny.en transcribes it word for word)."""

from __future__ import annotations

import functools

from voice.endpointing_eval import speech_pcm16k as _deterministic_speech

SAMPLE_RATE = 16000
FRAME_BYTES = SAMPLE_RATE // 50 * 2  # 20 ms of s16le


@functools.cache
def speech_pcm16k(text: str) -> bytes:
    """16 kHz s16le mono speech of ``text``; Piper's noise terms are off, so it is the same every run."""
    return _deterministic_speech(text)


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (SAMPLE_RATE * ms // 1000)


def frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split into whole frames, zero-padding the last one."""
    if len(pcm) % frame_bytes:
        pcm += b"\x00" * (frame_bytes - len(pcm) % frame_bytes)
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
