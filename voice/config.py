"""Pipeline configuration: one dataclass, overridable from ``VOICE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from voice.acknowledgement import DEFAULT_SET as DEFAULT_ACK_SET

_OFF = frozenset({"0", "false", "no", "off"})


def switched_on(name: str) -> bool:
    """An on/off switch from the environment (``TRIAGE_SAFETY_NET``, ``TRIAGE_AFFECT``, ...):
    on unless set to 0, false, no or off, so a part that is missing a setting still runs."""
    return os.environ.get(name, "1").strip().lower() not in _OFF


# Per-stage latency budgets in ms. Keys are the stage names TurnMetrics reports
# (voice.telemetry.STAGES); a measured value above its budget is a BudgetMissed event.
DEFAULT_BUDGETS_MS: dict[str, float] = {
    "endpoint": 500.0,  # end of speech -> end-of-turn decision
    "asr_final": 900.0,  # end of speech -> final transcript
    "llm_first_token": 400.0,  # generation start -> first token
    "first_clause": 700.0,  # generation start -> first complete, validated clause
    "tts_first_audio": 250.0,  # synthesis start -> first audio of a clause
    "response_onset": 400.0,  # end of speech -> first agent audio byte out
    "answer_onset": 800.0,  # end of speech -> first audio of the clause carrying the prompt
    "barge_in_hold": 150.0,  # speech onset over the agent -> AgentPaused (playback held)
}

# Context-chosen acknowledgements (voice.acknowledgement): all pre-synthesized at start-up.
DEFAULT_ACKNOWLEDGEMENTS: tuple[str, ...] = DEFAULT_ACK_SET.phrases()


@dataclass
class PipelineConfig:
    # input audio
    sample_rate: int = 16000
    frame_ms: int = 20
    vad_aggressiveness: int = 2
    # output audio
    output_sample_rate: int = 16000
    audio_chunk_ms: int = 100  # AgentAudio chunk length (<= 100 ms)
    playback_report_timeout_ms: int = 800  # wait this long for the client's report after a barge-in
    # endpointing (see voice.endpointing.EndpointPolicy)
    vad_hangover_ms: int = 200  # voiced -> pause after this much unvoiced audio
    # Voiced time (within 200 ms) that resumes a paused turn. webrtcvad (mode 2) marks
    # isolated 4-frame (80 ms) blips in a quiet noise floor after speech; at 80 ms each blip
    # "resumed" the turn, cancelled speculation and counted as talking over the agent.
    vad_resume_ms: int = 100
    endpoint_complete_ms: int = 200  # silence that ends an answer whose words look complete (sure last word)
    endpoint_incomplete_ms: int = 1300  # silence that ends any turn (hesitation or not)
    # In an open statement (the first one, or after an open prompt) the pause decode waits
    # for this much silence: it cannot end before 500 ms (its closing clause) or 1 s, and its
    # short clause pauses (Piper's: 200-380 ms) need no decode (0: decode at every pause, as
    # answers do). A closing clause then ends the turn when its words are back (~0.5-0.55 s
    # on an idle CPU; the bar is 500 ms since 2026-12-02, 600 before).
    open_pause_decode_ms: int = 400
    # An answer's pause decode starts after this much unvoiced audio, inside the 200 ms
    # hangover, so a bare "No." ends its turn as the pause is declared (0: at the pause).
    early_pause_decode_ms: int = 100
    max_turn_ms: int = 30000
    # ASR
    asr_backend: str = "faster_whisper"  # voice/backends.py names the recognizer the runtime builds
    asr_model: str | None = None  # None: ModelSettings decides (TRIAGE_ASR_MODEL, default tiny.en)
    asr_beam_size: int = 1  # final pass; partials are always greedy
    asr_cpu_threads: int = 2  # intra-op threads of one decode
    asr_num_workers: int = 1  # decodes that truly run in parallel (CTranslate2 workers)
    # "fit": encode only the audio + asr_fit_pad_s of silence (about 4x cheaper on CPU);
    # "full": Whisper's 30 s window for every decode (voice.asr explains the trade).
    asr_window: str = "fit"
    asr_fit_pad_s: float = 2.0
    # Clinical vocabulary put before every decode's prompt (voice.asr.resolve_vocabulary):
    # "rules" = the rule set's red-flag words, "off", or comma-separated words. Chosen from the
    # red-flag recall figures in docs/benchmarks.md ("ASR and clinical words").
    asr_vocabulary: str = "rules"
    # New speech between two partial decodes. The pause decode waits for a partial in
    # flight, so this trades partial freshness (red flags seen sooner) against final delay.
    partial_interval_ms: int = 400
    # TTS
    tts_backend: str = "piper"  # voice/backends.py names the voice the runtime builds
    # LLM
    llm_backend: str = "llama_cpp"  # llama_cpp / vllm / openai / none (guardrail's scripted text only)
    llm_max_tokens: int = 64
    llm_temperature: float = 0.2
    # The model adds only the acknowledgement; the rules' question/disposition follows word for
    # word (voice.llm.guardrail). False: the model re-types it and the guardrail verifies it.
    llm_required_verbatim: bool = True
    # behaviour
    speculation: bool = True  # final ASR + reply generation at the first pause
    barge_in: bool = True
    # Voiced speech over the agent -> AgentPaused: the host holds playback at once, and
    # resumes it if the burst turns out to be a backchannel (0: no hold, stop only on barge-in).
    # Over the agent the segmenter starts a burst after this much voice too (not its usual
    # 120 ms): 80 ms puts the caller's stop signal ~80-90 ms after their onset (was ~120).
    barge_in_pause_ms: int = 80
    # ... if the voiced frames are at least this loud (dBFS, mean power): VAD blips in a quiet
    # noise floor are not a hold. Speech into a browser microphone sits around -35 to -15.
    barge_in_hold_min_dbfs: float = -50.0
    barge_in_min_ms: int = 800  # voiced speech over the agent, no words heard yet -> barge-in
    # Less confident decodes of overlapping speech are "no words". Calibrated for the fitted
    # window (Piper bursts, 2026-12-01): "Wait."/"Sorry."/"No." from their first 300 ms at
    # -0.7..-0.9, hums and coughs ("Amen.", "Imam", "Oh", "Okay," from a cough) at -1.6 or
    # below. With barge_in_full_window the old floor -0.6 applies.
    barge_in_min_logprob: float = -1.0
    # Speech over the agent is decoded every this much new audio (from its onset), in the
    # fitted window (~0.1 s a decode, not ~0.4 s), one decode at a time: the first partial
    # of a burst is often unsure ("Wait," at -2.1), the next one 100 ms later decides
    # (evals.voice.bargein: interrupt p50 320 ms at 100 ms, 420 ms at 200 ms).
    barge_in_partial_interval_ms: int = 100
    barge_in_full_window: bool = False
    # A held reply plays on once a partial heard only a backchannel ("Okay", "Yeah") and the
    # burst has been unvoiced this long (before the segmenter's 200 ms pause and the decode
    # of the burst, which can still cancel). 60 ms: three unvoiced frames. (A short burst
    # whose partials heard no reliable word - a hum, a cough - plays on at its pause.)
    barge_in_release_ms: int = 60
    # ... or once its frames have been quieter than barge_in_hold_min_dbfs this long: the voice
    # has stopped, though webrtcvad calls the decay and the room noise after it speech for
    # ~100 ms more (Piper's "Uh-huh." is at the -70 dBFS floor 20 ms after its last audible
    # sample and unvoiced only 100-140 ms later). 40 ms: two frames, more than the one-frame
    # dip of a stop consonant ("O-kay": one frame at -55).
    barge_in_quiet_release_ms: int = 40
    barge_in_max_no_speech: float = 0.6
    interrupt_emergency_script: bool = False  # an emergency script is spoken to the end
    # Joined turns (issue 12): if the caller goes on after the endpoint - before the reply is
    # heard, or over it (a real interruption, not a backchannel) - within this long of the
    # endpoint and before the reply's question has played for ``join_answer_grace_ms``, the
    # agent yields and the new words join the previous turn: the rules see the whole
    # statement once (their state is rolled back to before the fragment). 0: off.
    join_window_ms: int = 2500
    join_answer_grace_ms: int = 600
    acknowledgements: tuple[str, ...] = DEFAULT_ACKNOWLEDGEMENTS
    # Who says the reply's one acknowledgement: "phrases" (a cached phrase chosen by what the
    # patient said, at the endpoint; the rules' words follow verbatim, the model is not asked)
    # or "model" (the LLM's own acknowledgement through the guardrail, no cached one before it:
    # worth it only where the model answers within the endpoint, e.g. vLLM on a GPU).
    ack_source: str = "phrases"
    # compute
    compute_workers: int = 2
    session_queue_limit: int = 4
    budgets_ms: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BUDGETS_MS))

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30 (webrtcvad)")
        if not 0 < self.audio_chunk_ms <= 100:
            raise ValueError("audio_chunk_ms must be in (0, 100]")
        if self.ack_source not in ("phrases", "model"):
            raise ValueError("ack_source must be 'phrases' or 'model'")
        if self.sample_rate != 16000:
            raise ValueError("input audio is 16 kHz mono s16le")

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * self.frame_ms // 1000 * 2

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> PipelineConfig:
        """``VOICE_<FIELD>`` for scalar fields (e.g. VOICE_SPECULATION=0, VOICE_LLM_BACKEND=vllm),
        ``VOICE_BUDGET_<STAGE>_MS`` for budgets, ``VOICE_ACKNOWLEDGEMENTS`` as ``|``-separated text."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "VOICE_" + f.name.upper()
            if f.name == "budgets_ms" or key not in env:
                continue
            raw = env[key]
            if f.name == "acknowledgements":
                values[f.name] = tuple(p.strip() for p in raw.split("|") if p.strip())
            elif f.type in ("bool", bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("float", float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        if "llm_backend" not in values and env.get("TRIAGE_LLM_BACKEND"):
            values["llm_backend"] = env["TRIAGE_LLM_BACKEND"]  # the deploy kit's name for it
        budgets = dict(DEFAULT_BUDGETS_MS)
        for stage in DEFAULT_BUDGETS_MS:
            key = f"VOICE_BUDGET_{stage.upper()}_MS"
            if key in env:
                budgets[stage] = float(env[key])
        values["budgets_ms"] = budgets
        values.update(overrides)
        return cls(**values)
