"""Test speech made with the bundled Piper voice (tiny.en transcribes it word for word).

The synthesis lives in evals/speech.py (the evaluations use the same speech); this module keeps
the tests' import path and caches the bytes per text.
"""

from __future__ import annotations

import functools

from evals.speech import frames, silence
from evals.speech import speech_pcm16k as _deterministic_speech

__all__ = ["frames", "silence", "speech_pcm16k"]


@functools.cache
def speech_pcm16k(text: str) -> bytes:
    """16 kHz s16le mono speech of ``text``; Piper's noise terms are off, so it is the same every run."""
    return _deterministic_speech(text)
