"""ASR and TTS backends chosen by name (voice/backends.py), as the LLM's: the bundled ones are
registered, an unknown name is refused naming the known ones, and a registered backend is what
``VoiceRuntime.load`` builds and caches the fixed phrases with. The registered stand-ins are the
clearly marked fakes of tests/fakes.py (no Whisper, no Piper); the bundled backends are loaded
by every real runtime (tests/voice/test_pipeline.py)."""

from __future__ import annotations

import pytest

from tests.fakes import ScriptedRecognizer, ToneSynthesizer
from voice import backends
from voice.config import PipelineConfig
from voice.runtime import VoiceRuntime
from voice.tts import normalize_phrase


def test_the_bundled_backends_are_the_defaults():
    config = PipelineConfig()
    assert (config.asr_backend, config.tts_backend) == ("faster_whisper", "piper")
    assert {"faster_whisper"} <= set(backends.RECOGNIZERS) and {"piper"} <= set(backends.SYNTHESIZERS)
    chosen = PipelineConfig.from_env({"VOICE_ASR_BACKEND": "cloud", "VOICE_TTS_BACKEND": "other"})
    assert (chosen.asr_backend, chosen.tts_backend) == ("cloud", "other")


def test_an_unknown_backend_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="unknown ASR backend 'nope'; known: .*faster_whisper"):
        backends.build_recognizer(PipelineConfig(asr_backend="nope"), None)
    with pytest.raises(ValueError, match="unknown TTS backend 'nope'; known: .*piper"):
        backends.build_synthesizer(PipelineConfig(tts_backend="nope"), None)


def test_a_registered_backend_is_what_the_runtime_loads(monkeypatch):
    monkeypatch.setenv("TRIAGE_TTS_CACHE", "off")  # tone audio must not land in the shared cache
    monkeypatch.setattr(backends, "RECOGNIZERS", dict(backends.RECOGNIZERS))
    monkeypatch.setattr(backends, "SYNTHESIZERS", dict(backends.SYNTHESIZERS))
    built = {}

    @backends.register_recognizer("scripted")
    def scripted(config, settings):
        built["asr"] = ScriptedRecognizer(lambda _seconds, _partial: "hello")
        return built["asr"]

    @backends.register_synthesizer("tone")
    def tone(config, settings):
        built["tts"] = ToneSynthesizer()
        return built["tts"]

    config = PipelineConfig(asr_backend="scripted", tts_backend="tone", llm_backend="none")
    runtime = VoiceRuntime.load(config, warm=False)
    try:
        assert runtime.recognizer is built["asr"] and runtime.synthesizer is built["tts"]
        assert runtime.generator is None
        ack = config.acknowledgements[0]
        expected = built["tts"].synthesize_pcm(normalize_phrase(ack), config.output_sample_rate)
        assert runtime.phrases.get(ack) == expected, "the fixed phrases are cached in the chosen voice"
    finally:
        runtime.close()
        runtime.background_warm_done.wait(60)
