"""Narrow interfaces between pipeline stages, so each stage can be swapped.

Blocking model calls (``transcribe``, ``synthesize``, token generation) are plain
synchronous methods; the pipeline runs them off the event loop (see ``voice.compute``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


class VoiceActivityDetector(Protocol):
    sample_rate: int
    frame_ms: int  # 10, 20 or 30 for webrtcvad

    def is_speech(self, frame: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[tuple[str, float, float], ...] = ()  # (word, start_s, end_s) when available
    duration_s: float = 0.0  # inference time
    word_probs: tuple[float, ...] = ()  # per-word probability, parallel to ``words`` when available


class SpeechRecognizer(Protocol):
    sample_rate: int  # 16000

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Blocking. ``audio`` is float32 mono in [-1, 1] at ``sample_rate``."""
        ...


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # system / user / assistant
    content: str


class TokenStream(Protocol):
    """A generation in progress. Iterating yields text pieces; ``cancel`` stops it promptly."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    def cancel(self) -> None: ...


class ReplyGenerator(Protocol):
    name: str

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 64, temperature: float = 0.2
    ) -> TokenStream: ...


class SpeechSynthesizer(Protocol):
    sample_rate: int  # native rate of the voice

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Blocking generator of 16-bit mono PCM chunks at ``sample_rate``."""
        ...


# --- the clinical side, as the pipeline sees it -----------------------------------------
# ``clinical_rules.TriageInterview`` satisfies these structurally; voice/ never imports it
# at module level so the pipeline can run with any policy (tests, other protocols).


@runtime_checkable
class Prompt(Protocol):
    kind: str  # greeting / question / clarify / disposition / emergency / closing
    text: str  # the deterministic words the agent must carry
    fixed: bool  # True: speak verbatim, never through the LLM (emergency scripts)
    rule_ids: tuple[str, ...]


class Assessment(Protocol):
    level: int | None
    disposition: str | None
    escalate: bool

    def to_dict(self) -> dict[str, Any]: ...


class DialoguePolicy(Protocol):
    def opening(self) -> Prompt: ...

    def observe_partial(self, text: str) -> Assessment:
        """Re-assess with ``text`` as the current, still-changing utterance (replaces the last partial)."""
        ...

    def observe_final(self, text: str) -> Assessment:
        """Commit ``text`` as a finished utterance (answers the pending question, if any)."""
        ...

    def next_prompt(self) -> Prompt: ...
