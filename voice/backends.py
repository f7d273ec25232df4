"""Speech recognition and synthesis backends by name, as the LLM's (voice/llm/factory.py).

``PipelineConfig.asr_backend`` and ``tts_backend`` (``VOICE_ASR_BACKEND``, ``VOICE_TTS_BACKEND``)
name the factory ``VoiceRuntime.load`` calls. A factory takes the pipeline config and the model
settings and returns something that satisfies ``voice.interfaces.SpeechRecognizer`` or
``SpeechSynthesizer``; ``register_recognizer`` / ``register_synthesizer`` add one (another STT
engine, another voice) without touching the runtime. Factories import their model library
when called, so naming a backend costs nothing until it is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from voice.config import PipelineConfig
from voice.interfaces import SpeechRecognizer, SpeechSynthesizer

RecognizerFactory = Callable[[PipelineConfig, Any], SpeechRecognizer]  # (config, model settings)
SynthesizerFactory = Callable[[PipelineConfig, Any], SpeechSynthesizer]

RECOGNIZERS: dict[str, RecognizerFactory] = {}
SYNTHESIZERS: dict[str, SynthesizerFactory] = {}


def register_recognizer(name: str) -> Callable[[RecognizerFactory], RecognizerFactory]:
    def add(factory: RecognizerFactory) -> RecognizerFactory:
        RECOGNIZERS[name] = factory
        return factory

    return add


def register_synthesizer(name: str) -> Callable[[SynthesizerFactory], SynthesizerFactory]:
    def add(factory: SynthesizerFactory) -> SynthesizerFactory:
        SYNTHESIZERS[name] = factory
        return factory

    return add


def _pick(registry: dict[str, Any], name: str, what: str):
    factory = registry.get(name)
    if factory is None:
        raise ValueError(f"unknown {what} backend {name!r}; known: {', '.join(sorted(registry))}")
    return factory


def build_recognizer(config: PipelineConfig, settings: Any) -> SpeechRecognizer:
    """Blocking: load the recognizer ``config.asr_backend`` names."""
    return _pick(RECOGNIZERS, config.asr_backend, "ASR")(config, settings)


def build_synthesizer(config: PipelineConfig, settings: Any) -> SpeechSynthesizer:
    """Blocking: load the voice ``config.tts_backend`` names."""
    return _pick(SYNTHESIZERS, config.tts_backend, "TTS")(config, settings)


# --- the bundled backends ---------------------------------------------------------------------


@register_recognizer("faster_whisper")
def faster_whisper(config: PipelineConfig, settings: Any) -> SpeechRecognizer:
    """Whisper through CTranslate2 (voice/asr.py), the model ``settings`` resolve (tiny.en bundled)."""
    from voice.asr import WhisperRecognizer
    from voice.provisioning import asr_model_dir

    return make_whisper(WhisperRecognizer, asr_model_dir(settings), config)


@register_synthesizer("piper")
def piper(config: PipelineConfig, settings: Any) -> SpeechSynthesizer:
    """Piper (ONNX) with the voice ``settings`` resolve (en_US-joe-medium bundled)."""
    from voice.provisioning import piper_voice_paths
    from voice.tts import PiperSynthesizer

    return PiperSynthesizer.load(*piper_voice_paths(settings))


def make_whisper(cls, model_dir, config: PipelineConfig):
    """Build the recognizer with what its constructor accepts (keeps voice.asr free to evolve)."""
    from voice.asr import resolve_vocabulary

    params = inspect.signature(cls).parameters
    wanted = {
        "beam_size": config.asr_beam_size,
        "cpu_threads": config.asr_cpu_threads,
        "num_workers": config.asr_num_workers,
        "window": config.asr_window,
        "fit_pad_s": config.asr_fit_pad_s,
        "vocabulary": resolve_vocabulary(config.asr_vocabulary),
    }
    return cls(model_dir, **{k: v for k, v in wanted.items() if k in params})
