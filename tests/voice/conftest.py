"""Shared voice fixtures: real Piper speech at 16 kHz and one loaded tiny.en per session.

Speech is synthesised with the bundled Piper voice with its noise terms at zero, so the
same text always gives the same audio (and the same transcript): tests stay
deterministic. Everything model-backed is session-scoped and created on first use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture(scope="session")
def speech16k() -> Callable[..., np.ndarray]:
    """``speech16k(text, length_scale=1.0) -> float32 array`` at 16 kHz (cached)."""
    from evals.speech import synthesize_16k

    return synthesize_16k


@pytest.fixture(scope="session")
def speech_pcm16k() -> Callable[..., bytes]:
    """``speech_pcm16k(text, length_scale=1.0) -> bytes``: 16-bit mono PCM at 16 kHz."""
    from evals.speech import speech_pcm16k as make

    return make


@pytest.fixture(scope="session")
def utterance_with_pauses():
    """``utterance_with_pauses("I have a pain in my", 600, "chest.") -> Utterance``
    (lead-in silence, exact inserted pauses, 2 s tail, faint noise floor)."""
    from evals.voice.endpointing import build_utterance

    return lambda *pieces, **kw: build_utterance(pieces, **kw)


@pytest.fixture(scope="session")
def tiny_recognizer():
    """The bundled tiny.en, loaded once (CPU, int8, 2 threads)."""
    from voice.asr import WhisperRecognizer
    from voice.provisioning import ModelSettings

    return WhisperRecognizer.from_settings(ModelSettings(asr_model="tiny.en"))
