"""Shared test doubles for the voice pipeline's model stages: speech recognition (STT), speech
synthesis (TTS), reply generation (LLM), and the slice of ``VoiceRuntime`` a session uses.

Each one is a FAKE and says so: it stands in for a model so that session logic (turns, replies,
barge-in, budgets) can be tested with exact control and, with ``ToneSynthesizer``, without
loading Piper. The VAD, segmenter, endpointing and the rules stay real in every session test
(the session builds its VAD from ``PipelineConfig``); full-model round trips are in
tests/voice/test_pipeline.py.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from voice.audio import resample_pcm16
from voice.compute import ComputePool
from voice.config import PipelineConfig
from voice.interfaces import ChatMessage, Transcription
from voice.tts import PhraseCache

# --- STT --------------------------------------------------------------------------------------


class ScriptedRecognizer:
    """FAKE SpeechRecognizer (no model): ``hear(seconds_of_audio, partial) -> text`` decides what
    each decode "hears", so the timing of every decode is deterministic. ``decode_s`` charges a
    fixed time to each decode; ``gate`` (when set) holds every final decode until released.
    Records ``(seconds_of_audio, partial)`` per call."""

    sample_rate = 16000
    supports_partial = True

    def __init__(self, hear: Callable[[float, bool], str], *, decode_s: float = 0.0):
        self.hear = hear
        self.decode_s = decode_s
        self.calls: list[tuple[float, bool]] = []
        self.gate: threading.Event | None = None

    def transcribe(self, audio, *, prompt=None, partial=False, **_kwargs) -> Transcription:
        dur = len(audio) / self.sample_rate
        self.calls.append((dur, partial))
        if self.decode_s:
            time.sleep(self.decode_s)
        if not partial and self.gate is not None:
            self.gate.wait(30)
        return Transcription(self.hear(dur, partial), -0.1, 0.01, (), 0.0)


def voiced_buzz(ms: int, rate: int = 16000) -> bytes:
    """FAKE speech for the real VAD (no words, no Piper): a gliding harmonic buzz at a vowel's
    pitch with a syllable-rate envelope, which webrtcvad calls speech in every frame. Pair it with
    a ``ScriptedRecognizer`` that says what the words were."""
    t = np.arange(rate * ms // 1000) / rate
    phase = np.cumsum(2 * np.pi * (130 + 20 * np.sin(2 * np.pi * 3 * t)) / rate)
    buzz = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.3 * buzz * envelope / np.max(np.abs(buzz)) * 32767).astype("<i2").tobytes()


# --- TTS --------------------------------------------------------------------------------------


@functools.cache
def piper_synthesizer():
    """The bundled Piper voice, loaded once per test process (the real TTS)."""
    from voice.provisioning import ModelSettings, piper_voice_paths
    from voice.tts import PiperSynthesizer

    return PiperSynthesizer.load(*piper_voice_paths(ModelSettings.from_env()))


class ToneSynthesizer:
    """FAKE SpeechSynthesizer (no model): a quiet 220 Hz tone, ``ms_per_char`` per character of
    text (one chunk per sentence, like Piper), so what a reply "says" has a known length."""

    sample_rate = 16000
    identity = "tone-fake"

    def __init__(self, ms_per_char: int = 60):
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []

    def synthesize(self, text: str, length_scale: float = 1.0) -> Iterator[bytes]:
        self.texts.append(text)
        for sentence in filter(None, (s.strip() for s in text.split("."))):
            n = int(self.sample_rate * self.ms_per_char * len(sentence) * length_scale / 1000)
            tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / self.sample_rate)
            yield (tone * 32767).astype("<i2").tobytes()

    def synthesize_pcm(self, text: str, out_rate: int, length_scale: float = 1.0) -> bytes:
        return resample_pcm16(b"".join(self.synthesize(text, length_scale)), self.sample_rate, out_rate)


# --- LLM --------------------------------------------------------------------------------------


class ScriptedTokenStream:
    """FAKE TokenStream: yields the given pieces (``delay_s`` apart); if ``stall_after`` is set,
    stops producing after that many pieces and waits (on an event nobody sets) until cancelled,
    like a stuck model."""

    def __init__(self, pieces: Sequence[str], *, stall_after: int | None = None, delay_s: float = 0.0):
        self.pieces = list(pieces)
        self.stall_after = stall_after
        self.delay_s = delay_s
        self.cancelled = asyncio.Event()
        self.yielded = 0

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for i, piece in enumerate(self.pieces):
            if self.stall_after is not None and i >= self.stall_after:
                await self.cancelled.wait()
            if self.cancelled.is_set():
                return
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            self.yielded += 1
            yield piece
        if self.stall_after is not None and self.stall_after >= len(self.pieces):
            await self.cancelled.wait()

    def cancel(self) -> None:
        self.cancelled.set()


class ScriptedGenerator:
    """FAKE ReplyGenerator handing out one ScriptedTokenStream; records the messages it got."""

    name = "scripted-fake"
    saturated = False

    def __init__(self, stream: ScriptedTokenStream) -> None:
        self.stream_obj = stream
        self.messages: list[ChatMessage] | None = None

    def stream(self, messages, *, max_tokens=64, temperature=0.2):
        self.messages = list(messages)
        return self.stream_obj


class NeverCalledGenerator:
    """FAKE ReplyGenerator that fails the test if anything asks it to generate."""

    name = "never-called-fake"
    saturated = False

    def stream(self, messages, *, max_tokens=64, temperature=0.2):
        raise AssertionError("the LLM must not be called for this prompt")


# --- the runtime ------------------------------------------------------------------------------


class FakeRuntime:
    """The slice of ``VoiceRuntime`` a ``VoiceSession`` uses, around the given fakes: real Piper
    unless ``synthesizer`` is given, no LLM unless ``generator`` is (the rules' exact text is
    spoken). ``warm`` pre-synthesizes the acknowledgement phrases, as ``VoiceRuntime.load`` does."""

    def __init__(
        self,
        config: PipelineConfig,
        recognizer,
        *,
        generator=None,
        synthesizer=None,
        warm: bool = True,
    ):
        synth = synthesizer if synthesizer is not None else piper_synthesizer()
        self.config = config
        self.compute = ComputePool(2)
        self.recognizer = recognizer
        self.synthesizer = synth
        self.phrases = PhraseCache(synth, 16000)
        if warm:
            self.phrases.warm(config.acknowledgements)
        self.generator = generator

    def close(self) -> None:
        self.compute.close()
