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
    """What the pipeline (``voice.asr.StreamingTranscriber``) uses of a recognizer."""

    sample_rate: int  # 16000
    # True: ``transcribe`` also takes ``partial=True`` (a cheaper decode for captions and the
    # barge-in gate) and ``full_window=True`` (decode the whole audio, no trailing window);
    # False: partials are plain ``transcribe`` calls too.
    supports_partial: bool

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None, **options: Any) -> Transcription:
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
    """What the pipeline (``voice.tts.ClauseSpeaker``, ``PhraseCache``) uses of a voice."""

    sample_rate: int  # native rate of the voice
    identity: str  # names the voice in the phrase cache's disk keys (another voice, other audio)

    def synthesize(self, text: str, length_scale: float = 1.0) -> Iterator[bytes]:
        """Blocking generator of 16-bit mono PCM chunks at ``sample_rate``; ``length_scale`` > 1
        is slower speech (voice.prosody)."""
        ...

    def synthesize_pcm(self, text: str, out_rate: int, length_scale: float = 1.0) -> bytes:
        """Blocking: the whole text as 16-bit mono PCM at ``out_rate``."""
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
    next_question: Prompt | None  # on escalation: the fixed emergency script

    def to_dict(self) -> dict[str, Any]: ...


class DialoguePolicy(Protocol):
    """The clinical side as the pipeline drives it; everything here is used by
    ``voice.pipeline.VoiceSession`` (no optional extras probed for)."""

    context: (
        Any  # who the call is about (clinical_rules.PatientContext): an elderly caller is spoken to calmly
    )

    def opening(self) -> Prompt: ...

    def observe_partial(self, text: str) -> Assessment:
        """Re-assess with ``text`` as the current, still-changing utterance (replaces the last partial)."""
        ...

    def observe_final(self, text: str) -> Assessment:
        """Commit ``text`` as a finished utterance (answers the pending question, if any)."""
        ...

    def next_prompt(self) -> Prompt: ...

    def queue_question(self, question_id: str) -> bool:
        """Ask ``question_id`` at the next question slot (an affect tag's question); False when
        the policy will not (unknown, already asked, the call is decided). Changes no level."""
        ...

    def fork(self) -> DialoguePolicy:
        """A throw-away copy for speculation: fed a final that may never be confirmed, while
        this policy only ever hears confirmed ones."""
        ...

    def restore(self, snapshot: DialoguePolicy) -> None:
        """Put this policy back, in place, to a :meth:`fork` taken earlier (a joined turn rolls
        the rules back to before the words it joins; the host keeps its reference)."""
        ...
