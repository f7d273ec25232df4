"""Process-wide models and compute, loaded once and shared by every ``VoiceSession``.

``VoiceRuntime.load`` is blocking (seconds: it loads Whisper, Piper and the LLM, warms
the LLM's prompt prefix and pre-synthesizes the fixed phrases); call it in a thread at
process start. Sessions only borrow from it: per-session state lives in the session.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice.compute import ComputePool
from voice.config import PipelineConfig
from voice.interfaces import ReplyGenerator, SpeechRecognizer, SpeechSynthesizer
from voice.prosody import CALM, NORMAL
from voice.tts import PhraseCache

log = logging.getLogger(__name__)


def policy_phrases() -> tuple[list[str], list[str]]:
    """Fixed texts the clinical rules may speak, as (urgent, later): the greeting and the
    emergency scripts must start instantly from the first call on; the other system texts,
    protocol questions and dispositions are cached in the background. Empty without rules."""
    try:
        from voice import clinical
    except ImportError:
        return [], []
    urgent: list[str] = []
    try:
        rs = clinical.load_ruleset()
        urgent = [rs.texts["greeting"]] if isinstance(rs.texts.get("greeting"), str) else []
        urgent += [s.text for s in rs.scripts.values()]
    except Exception:  # a listing problem must not stop the voice runtime
        log.exception("could not list the rule set's urgent phrases")
    try:
        everything = [str(p) for p in clinical.fixed_phrases()]
    except Exception:
        log.exception("clinical_rules.fixed_phrases() failed")
        everything = []
    seen = set(urgent)
    return urgent, [p for p in everything if p not in seen]


def _empathy_phrases() -> list[str]:
    """The affect rules' empathy phrase (clinical_rules affect.yaml), or none without the rules."""
    try:
        from voice.clinical import default_affect_rules

        return [default_affect_rules().empathy_phrase]
    except Exception:  # a listing problem must not stop the voice runtime
        log.exception("could not load the affect rules' empathy phrase")
        return []


@dataclass
class VoiceRuntime:
    config: PipelineConfig
    compute: ComputePool
    recognizer: SpeechRecognizer
    synthesizer: SpeechSynthesizer
    phrases: PhraseCache
    generator: ReplyGenerator | None = None
    model_settings: Any = None
    load_seconds: dict[str, float] = field(default_factory=dict)
    background_warm_done: threading.Event = field(default_factory=threading.Event)
    _closed: bool = False

    @classmethod
    def load(
        cls,
        config: PipelineConfig | None = None,
        model_settings: Any = None,
        *,
        extra_phrases: Iterable[str] = (),
        warm: bool = True,
    ) -> VoiceRuntime:
        """Blocking: load the ASR, TTS and LLM backends ``config`` names (``asr_backend``,
        ``tts_backend``: voice/backends.py; ``llm_backend``: voice/llm/factory.py)."""
        from voice.backends import build_recognizer, build_synthesizer
        from voice.provisioning import ModelSettings

        config = config or PipelineConfig.from_env()
        settings = model_settings or ModelSettings.from_env()
        if config.asr_model and model_settings is None:
            settings = dataclasses.replace(settings, asr_model=config.asr_model)
        times: dict[str, float] = {}

        t0 = time.perf_counter()
        recognizer = build_recognizer(config, settings)
        times["asr"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        synth = build_synthesizer(config, settings)
        times["tts"] = time.perf_counter() - t0

        generator = None
        if config.llm_backend not in ("none", ""):
            from voice.llm.factory import build_generator

            t0 = time.perf_counter()
            generator = build_generator(
                config, shared=False
            )  # config.llm_backend + VOICE_LLM_* env; we own it
            if warm and generator is not None:
                for step in ("warmup", "load"):
                    fn = getattr(generator, step, None)
                    if callable(fn):
                        fn()
                        break
            times["llm"] = time.perf_counter() - t0

        compute = ComputePool(
            config.compute_workers,
            session_queue_limit=config.session_queue_limit,
            max_running_per_session=min(2, config.compute_workers),
        )
        runtime = cls(
            config=config,
            compute=compute,
            recognizer=recognizer,
            synthesizer=synth,
            phrases=PhraseCache(synth, config.output_sample_rate, disk_dir=_phrase_dir(settings)),
            generator=generator,
            model_settings=settings,
        )
        t0 = time.perf_counter()
        urgent, later = policy_phrases()
        runtime.phrases.warm([*config.acknowledgements, *urgent, *extra_phrases])
        # The empathy phrase is one acknowledgement, cached whole at both paces (voice/prosody.py).
        # Emergency scripts are spoken calmly; their calm audio is cached in the background (about
        # 80 clauses, 15-40 s of Piper on a fresh machine), the normal pace's audio stands in until then.
        for phrase in _empathy_phrases():
            runtime.phrases.add(phrase)
            runtime.phrases.add(phrase, CALM)
        times["phrases"] = time.perf_counter() - t0
        if later or urgent[1:]:
            runtime.warm_in_background(later, calm=urgent[1:])
        if warm:
            t0 = time.perf_counter()
            _warm_asr(recognizer)
            times["asr_warmup"] = time.perf_counter() - t0
        runtime.load_seconds = {k: round(v, 3) for k, v in times.items()}
        log.info("voice runtime loaded: %s (%d cached phrases)", runtime.load_seconds, len(runtime.phrases))
        return runtime

    def warm_phrases(self, texts: Iterable[str]) -> int:
        """Blocking: add phrases to the shared cache (e.g. a new protocol's questions)."""
        return self.phrases.warm(texts)

    def warm_in_background(self, texts: Iterable[str], *, calm: Iterable[str] = ()) -> threading.Thread:
        """Cache ``texts`` clause by clause through the shared compute pool, one job at a
        time, so live sessions keep their fair share while the cache fills; then ``calm`` at the
        calm pace (voice/prosody.py)."""
        from voice.llm.chunker import split_clauses
        from voice.tts import normalize_phrase

        clauses = [(c, NORMAL) for t in texts for c in split_clauses(normalize_phrase(t))]
        clauses += [(c, CALM) for t in calm for c in split_clauses(normalize_phrase(t))]
        handle = self.compute.session("phrase-warmup")

        def work() -> None:
            added = 0
            try:
                for clause, prosody in clauses:
                    if self._closed:
                        return
                    added += handle.submit(self.phrases.add, clause, prosody).result()
            except Exception:  # pool closed at shutdown, or a synthesis error: the cache is an optimisation
                log.debug("background phrase warm-up stopped", exc_info=True)
            finally:
                handle.close()
                self.background_warm_done.set()
                log.info("background phrase cache: %d clauses added", added)

        self.background_warm_done.clear()
        thread = threading.Thread(target=work, name="phrase-warmup", daemon=True)
        thread.start()
        # A daemon thread still inside ONNX Runtime when the interpreter tears down aborts the
        # process (rc 134 seen at the end of test runs on a fresh phrase cache): at exit, stop the
        # warm-up and let the clause in synthesis finish first.
        atexit.register(self._stop_warmup, thread)
        return thread

    def _stop_warmup(self, thread: threading.Thread) -> None:
        self.close()
        thread.join(timeout=15.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.compute.close()
        close = getattr(self.generator, "close", None)
        if callable(close):
            close()


def _phrase_dir(settings) -> Path | None:
    """Phrase audio lives beside the model cache (TRIAGE_TTS_CACHE overrides, "off" disables)."""
    override = os.environ.get("TRIAGE_TTS_CACHE")
    if override:
        return None if override.lower() in ("off", "0", "none") else Path(override).expanduser()
    base = getattr(settings, "cache_dir", None)
    return Path(base).parent / "tts" if base is not None else None


def _warm_asr(recognizer: SpeechRecognizer) -> None:
    """First decode pays one-off allocations; do it before the first patient speaks."""
    import numpy as np

    rng = np.random.default_rng(0)
    recognizer.transcribe((rng.standard_normal(16000) * 0.01).astype(np.float32))
