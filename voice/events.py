"""Typed events that flow between pipeline stages and out to the host (the Django consumer).

Every event carries ``t``: seconds on the session clock (``time.monotonic()`` by default),
so telemetry can subtract any two of them. Events are immutable; stages never mutate
what they received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Speaker = Literal["patient", "agent"]


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One frame of 16-bit little-endian mono PCM as it arrived from the client."""

    pcm: bytes
    sample_rate: int
    t: float


# --- voice activity -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    turn_id: int
    t: float  # time of the first voiced frame (onset, not detection)
    detected_t: float  # when the detector confirmed it


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """Voiced audio stopped (after hangover). The turn may or may not be over."""

    turn_id: int
    t: float  # end of the last voiced frame


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    turn_id: int
    t: float


# --- recognition ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartialTranscript:
    turn_id: int
    text: str  # stable prefix + unstable tail, for captions
    stable_text: str  # words that will not change any more (local agreement)
    avg_logprob: float
    no_speech_prob: float
    t: float


@dataclass(frozen=True, slots=True)
class FinalTranscript:
    turn_id: int
    text: str
    avg_logprob: float
    no_speech_prob: float
    speech_start: float
    speech_end: float
    t: float


# --- turn taking ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    turn_id: int
    t: float  # when the endpoint was decided
    speech_end: float  # end of the user's speech that the decision refers to
    reason: str  # e.g. "complete_sentence", "long_silence", "max_turn"


@dataclass(frozen=True, slots=True)
class StateChanged:
    previous: str
    current: str
    cause: str
    turn_id: int
    t: float


# --- clinical policy ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssessmentUpdated:
    """The rules re-assessed the conversation (on a partial or a final transcript)."""

    turn_id: int
    level: int | None
    disposition: str | None
    escalate: bool
    reasons: tuple[dict[str, Any], ...]
    on_partial: bool
    t: float
    detail: dict[str, Any] = field(default_factory=dict)  # Assessment.to_dict()


@dataclass(frozen=True, slots=True)
class EscalationRaised:
    turn_id: int
    level: int
    disposition: str
    rule_ids: tuple[str, ...]
    reasons: tuple[dict[str, Any], ...]
    script: str  # fixed emergency text that is spoken to the patient
    on_partial: bool
    t: float


# --- agent reply ----------------------------------------------------------------------

# llm: the model's words; rules: the rules' exact words after a model acknowledgement;
# fallback: the rules' exact words because the model failed; script/cached: fixed text.
ReplySource = Literal["llm", "rules", "fallback", "script", "cached"]


@dataclass(frozen=True, slots=True)
class AgentReplyStarted:
    reply_id: int
    turn_id: int
    kind: str  # prompt kind: greeting / question / disposition / emergency / clarify
    required_text: str
    t: float


@dataclass(frozen=True, slots=True)
class AgentText:
    """A clause the agent is about to say (already validated by the guardrail)."""

    reply_id: int
    clause_index: int
    text: str
    source: ReplySource
    t: float
    answer: bool = False  # carries the question / disposition / script (answer onset starts here)


@dataclass(frozen=True, slots=True)
class AgentAudio:
    reply_id: int
    clause_index: int
    pcm: bytes  # 16-bit mono at sample_rate
    sample_rate: int
    t: float


@dataclass(frozen=True, slots=True)
class AgentReplyFinished:
    reply_id: int
    turn_id: int
    text: str  # everything that was sent for playback
    interrupted: bool
    fallback_used: bool
    t: float
    # Milliseconds of it the patient heard (None: unknown), kept by the session from the audio
    # the host took and the client's playback reports (VoiceSession._heard_ms).
    played_ms: float | None = None


@dataclass(frozen=True, slots=True)
class AgentInterrupted:
    """Barge-in (or the host's own ``VoiceSession.interrupt``): the host must stop playback
    now and report what was played."""

    reply_id: int
    turn_id: int
    speech_onset: float
    t: float
    by_host: bool = False  # the host asked (a clinician took the call): no barge-in


@dataclass(frozen=True, slots=True)
class AgentPaused:
    """Speech over the agent: the host must hold playback now (keep its buffer). Followed by
    ``AgentResumed`` (it was a backchannel or noise) or ``AgentInterrupted`` (a real barge-in)."""

    reply_id: int
    turn_id: int
    speech_onset: float
    t: float


@dataclass(frozen=True, slots=True)
class AgentResumed:
    """The speech that paused the agent was a backchannel or noise: play on from where it held."""

    reply_id: int
    turn_id: int
    paused_ms: float
    t: float


# --- observability --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetMissed:
    turn_id: int
    stage: str
    budget_ms: float
    actual_ms: float
    t: float


@dataclass(frozen=True, slots=True)
class AcousticAnomaly:
    turn_id: int
    # non_speech: the recognizer's words were judged invented (voice/speech_filter.py)
    kind: Literal["clipping", "dead_microphone", "low_level", "non_speech"]
    value: float
    t: float
    detail: str = ""  # non_speech: why (no_speech, low_confidence, repetition, hallucination)
    on_partial: bool = False  # non_speech: judged on a partial transcript (dropped, not shown)


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """Per-turn latency record. Values in milliseconds; None where the stage did not run."""

    turn_id: int
    stages: dict[str, float]
    response_onset_ms: float | None
    answer_onset_ms: float | None
    partial_confidence: float | None
    interrupted: bool
    fallback_used: bool
    budget_misses: tuple[str, ...]
    t: float


@dataclass(frozen=True, slots=True)
class PipelineError:
    stage: str
    code: str
    message: str
    t: float


VoiceEvent = (
    SpeechStarted
    | SpeechPaused
    | SpeechResumed
    | PartialTranscript
    | FinalTranscript
    | EndOfTurn
    | StateChanged
    | AssessmentUpdated
    | EscalationRaised
    | AgentReplyStarted
    | AgentText
    | AgentAudio
    | AgentReplyFinished
    | AgentInterrupted
    | AgentPaused
    | AgentResumed
    | BudgetMissed
    | AcousticAnomaly
    | TurnMetrics
    | PipelineError
)
