"""Streaming text-to-speech with Piper, plus a cache of pre-synthesized fixed phrases.

Piper synthesizes a whole sentence at a time (22,050 Hz for the bundled voice), so the
pipeline feeds it one clause at a time and ships each clause's audio as soon as it exists,
resampled to the output rate and cut into <= 100 ms chunks. Cancelling stops between two
chunks, i.e. mid-clause. Fixed phrases (greeting, emergency scripts, protocol questions,
acknowledgements) are synthesized once per process and start instantly.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from voice.audio import PCM_SAMPLE_WIDTH, resample_pcm16
from voice.compute import SessionCompute
from voice.interfaces import SpeechSynthesizer
from voice.llm.chunker import split_clauses
from voice.prosody import NORMAL, Prosody

log = logging.getLogger(__name__)


class PiperSynthesizer:
    """``SpeechSynthesizer`` over piper-tts 1.8. Thread-safe (one synthesis at a time per voice)."""

    def __init__(self, voice, *, sentence_silence_s: float = 0.0, identity: str = ""):
        self._voice = voice
        self.sample_rate: int = int(voice.config.sample_rate)
        self.identity = identity or f"piper@{self.sample_rate}"  # names the voice in cache keys
        self._lock = threading.Lock()  # the ONNX session is shared; Piper's phonemizer is not reentrant
        self._sentence_silence = b"\x00\x00" * int(self.sample_rate * sentence_silence_s)

    @classmethod
    def load(cls, model_path: str | Path, config_path: str | Path | None = None) -> PiperSynthesizer:
        from piper import PiperVoice  # heavy import, only where a voice is really loaded

        voice = PiperVoice.load(str(model_path), config_path=str(config_path) if config_path else None)
        path = Path(model_path)
        return cls(voice, identity=f"{path.name}:{path.stat().st_size}")

    def synthesize(self, text: str, length_scale: float = 1.0) -> Iterator[bytes]:
        """Blocking generator: one PCM16 chunk per sentence at ``sample_rate``; ``length_scale``
        > 1 speaks more slowly (voice.prosody)."""
        kwargs = {}
        if length_scale != 1.0:
            from piper import SynthesisConfig

            kwargs["syn_config"] = SynthesisConfig(length_scale=length_scale)
        with self._lock:
            chunks = [c.audio_int16_bytes for c in self._voice.synthesize(text, **kwargs)]
        for i, pcm in enumerate(chunks):
            if i and self._sentence_silence:
                yield self._sentence_silence
            yield pcm

    def synthesize_pcm(self, text: str, out_rate: int, length_scale: float = 1.0) -> bytes:
        """Blocking: whole text as PCM16 at ``out_rate``."""
        pcm = b"".join(self.synthesize(text, length_scale) if length_scale != 1.0 else self.synthesize(text))
        return resample_pcm16(pcm, self.sample_rate, out_rate)


def normalize_phrase(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def chunk_pcm(pcm: bytes, sample_rate: int, chunk_ms: int) -> list[bytes]:
    size = sample_rate * chunk_ms // 1000 * PCM_SAMPLE_WIDTH
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def pcm_ms(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / PCM_SAMPLE_WIDTH / sample_rate * 1000.0


class PhraseCache:
    """Pre-synthesized PCM16 at the output rate, keyed by normalized text and prosody setting
    (voice.prosody: the normal pace keys by text alone). Shared across sessions (read-mostly;
    writes are whole-value assignments under a lock).

    With ``disk_dir`` each clause is also kept on disk (keyed by voice, rate and text), so
    a restarted process has its fixed phrases back in milliseconds instead of re-running
    Piper over a few thousand characters."""

    FORMAT = 1  # bump when the stored audio would differ (resampler, chunking)

    def __init__(self, synth: SpeechSynthesizer, out_rate: int, *, disk_dir: str | Path | None = None):
        self.synth = synth
        self.out_rate = out_rate
        self._pcm: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.disk_hits = 0

    @staticmethod
    def _key(text: str, prosody: Prosody = NORMAL) -> str:
        key = normalize_phrase(text)
        return f"{prosody.cache_tag}|{key}" if prosody.cache_tag and key else key

    def get(self, text: str, prosody: Prosody = NORMAL) -> bytes | None:
        return self._pcm.get(self._key(text, prosody))

    def __contains__(self, text: str) -> bool:
        return normalize_phrase(text) in self._pcm

    def __len__(self) -> int:
        return len(self._pcm)

    def warm(self, texts: Iterable[str], prosody: Prosody = NORMAL) -> int:
        """Blocking: cache every clause of every phrase (the pipeline speaks fixed text
        clause by clause, so that is the unit it looks up); return how many were added."""
        added = 0
        for text in texts:
            for clause in split_clauses(normalize_phrase(text)):
                added += self.add(clause, prosody)
        return added

    def add(self, text: str, prosody: Prosody = NORMAL) -> int:
        """Blocking: cache one clause as is, at ``prosody``'s pace; 1 if it was new."""
        key = self._key(text, prosody)
        if not key or key in self._pcm:
            return 0
        pcm = self._load(key)
        if pcm is None:
            clause = normalize_phrase(text)
            if prosody.length_scale != 1.0:
                pcm = self.synth.synthesize_pcm(clause, self.out_rate, prosody.length_scale)
            else:
                pcm = self.synth.synthesize_pcm(clause, self.out_rate)
            self._store(key, pcm)
        else:
            self.disk_hits += 1
        with self._lock:
            self._pcm[key] = pcm
        return 1

    def _path(self, key: str) -> Path | None:
        if self.disk_dir is None:
            return None
        ident = f"{self.FORMAT}|{self.synth.identity}|{self.out_rate}|{key}"
        return self.disk_dir / (hashlib.sha256(ident.encode()).hexdigest() + ".pcm")

    def _load(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    def _store(self, key: str, pcm: bytes) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(pcm)
            os.replace(tmp, path)  # atomic: a reader never sees half a clause
        except OSError:
            log.debug("could not write the phrase cache at %s", path, exc_info=True)


@dataclass
class SpokenChunk:
    pcm: bytes
    first: bool  # first chunk of this clause
    cached: bool


class ClauseSpeaker:
    """Turns one clause into output-rate PCM chunks (cache first, else Piper on the shared
    compute pool). ``stream`` is an async generator that stops as soon as ``cancelled()``
    is true, between two chunks."""

    def __init__(
        self,
        synth: SpeechSynthesizer,
        cache: PhraseCache,
        compute: SessionCompute,
        *,
        out_rate: int,
        chunk_ms: int = 100,
        prosody: Prosody = NORMAL,
    ):
        self.synth = synth
        self.cache = cache
        self.compute = compute
        self.out_rate = out_rate
        self.chunk_ms = min(100, chunk_ms)
        self.prosody = prosody
        # The pause after each clause (calm prosody): silence appended to the clause's audio.
        self._pause = b"\x00\x00" * (out_rate * prosody.clause_pause_ms // 1000)

    async def render(self, text: str) -> tuple[bytes, bool]:
        """Whole clause as PCM at the output rate; (pcm, came_from_cache). A slower setting whose
        audio is not cached yet (the background warm-up fills it) uses the normal pace's cached
        audio with its own pause: a fixed phrase never waits for Piper because of its pace."""
        cached = self.cache.get(text, self.prosody)
        if cached is None and self.prosody is not NORMAL:
            cached = self.cache.get(text)
        if cached is not None:
            return cached + self._pause, True
        if self.prosody.length_scale != 1.0:
            pcm = await self.compute.run(
                self.synth.synthesize_pcm, normalize_phrase(text), self.out_rate, self.prosody.length_scale
            )
        else:
            pcm = await self.compute.run(self.synth.synthesize_pcm, normalize_phrase(text), self.out_rate)
        return pcm + self._pause, False

    async def stream(
        self, text: str, cancelled: Callable[[], bool] = lambda: False
    ) -> AsyncIterator[SpokenChunk]:
        pcm, cached = await self.render(text)
        for i, chunk in enumerate(chunk_pcm(pcm, self.out_rate, self.chunk_ms)):
            if cancelled():
                return
            yield SpokenChunk(chunk, i == 0, cached)
            await asyncio.sleep(0)  # let a barge-in land between chunks
