"""Barge-in decisions on synthetic bursts over the agent, in simulated time.

Each burst (a Piper interruption such as "Wait, I have a question first." or a backchannel
such as "Uh-huh.", a shaped-noise cough) is streamed frame by frame through the real WebRTC
VAD -> ``SpeechSegmenter``; from the burst's ``SpeechStarted`` its audio is decoded by the
real Whisper model on the pipeline's schedule (a partial every ``partial_interval_ms`` of new
audio once ``min_audio_ms`` are there, one decode at a time; the whole burst at its pause),
and ``BargeInDetector`` judges each decode exactly as ``VoiceSession`` does (same confidence
floor, ``final=False`` for partials of a burst still going on). ASR latency is modelled
(``asr_latency_s``) or measured.

Reported per burst: when the pipeline would hold the agent (``barge_in_pause_ms`` of loud voice;
over the agent the segmenter starts a burst that soon), then ``interrupt`` (and when, from the
burst's first voiced frame) or ``resume`` (the hold ends: ``barge_in_release_ms`` of unvoiced
frames or ``barge_in_quiet_release_ms`` of frames below the hold's level after the voice, when a
partial already heard a backchannel, else when the decode of the whole burst is back). A resume is
final here; in the pipeline the decode of the whole burst can still cancel the reply. A burst the pipeline would not judge at all
(the VAD never starts speech) is ``ignored``. ``make bench`` measures the same through the
real pipeline; this is the fast, deterministic view of the decision logic alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evals.speech import RATE, synthesize_16k, trim_silence
from voice.audio import AcousticMonitor, float32_to_pcm16, frame_bytes, pcm16_to_float32
from voice.config import PipelineConfig
from voice.endpointing import BargeInConfig, BargeInDetector, reliable_words
from voice.events import SpeechPaused, SpeechStarted
from voice.interfaces import Transcription
from voice.vad import SegmenterConfig, SpeechSegmenter, WebRtcVad

INTERRUPTIONS: tuple[str, ...] = (
    "Wait, I have a question first.",
    "Sorry, can you say that again please?",
    "No, hold on, that is not why I called.",
    "Excuse me, my daughter is the patient.",
    "Stop, I need to tell you something.",
    "Actually, I think my knee is swollen.",
)
BACKCHANNELS: tuple[str, ...] = ("Uh-huh.", "Okay.", "Mm-hmm.", "Yeah.", "Right.", "I see.", "Mm.", "<cough>")


def cough_16k(seed: int = 0) -> np.ndarray:
    """A 350 ms burst of decaying noise: what a cough gives the VAD and the recognizer."""
    rng = np.random.default_rng(seed)
    n = RATE * 350 // 1000
    return (rng.standard_normal(n) * np.exp(-np.linspace(0, 6, n)) * 0.3).astype(np.float32)


@dataclass
class BurstOutcome:
    text: str
    kind: str  # "interruption" / "backchannel"
    decision: str  # interrupt / resume / ignored
    decided_ms: float | None  # from the burst's first voiced frame
    held_ms: float | None  # ... to the hold (AgentPaused) the pipeline would send
    reason: str | None
    heard: list[str]  # each decode: text [avg log-prob] (p = partial, f = whole burst)

    @property
    def correct(self) -> bool:
        return (self.decision == "interrupt") == (self.kind == "interruption")


def simulate_burst(
    speech: np.ndarray,
    transcribe: Callable[..., Transcription],
    *,
    text: str = "",
    kind: str = "",
    config: PipelineConfig | None = None,
    asr_latency_s: float | None = None,
    lead_ms: int = 300,
    tail_ms: int = 1500,
) -> BurstOutcome:
    """Judge one burst; ``transcribe(audio, partial=..., full_window=...)`` is the recognizer."""
    cfg = config or PipelineConfig()
    seg_cfg = SegmenterConfig(
        hangover_ms=cfg.vad_hangover_ms,
        resume_voiced_ms=cfg.vad_resume_ms,
        frame_ms=cfg.frame_ms,
        quick_start_voiced_ms=cfg.barge_in_pause_ms or SegmenterConfig.start_voiced_ms,
    )
    vad, seg = WebRtcVad(RATE, cfg.frame_ms, cfg.vad_aggressiveness), SpeechSegmenter(seg_cfg)
    level = AcousticMonitor(sample_rate=RATE)  # the hold's loudness gate and the quiet release
    floor = cfg.barge_in_hold_min_dbfs
    gate = BargeInDetector(BargeInConfig(min_speech_ms=cfg.barge_in_min_ms))
    audio = np.concatenate(
        [np.zeros(RATE * lead_ms // 1000, np.float32), speech, np.zeros(RATE * tail_ms // 1000, np.float32)]
    )
    noise = np.random.default_rng(1).normal(0, 10 ** (-65 / 20), audio.size).astype(np.float32)
    pcm = float32_to_pcm16(audio + noise)
    size, frame_s = frame_bytes(RATE, cfg.frame_ms), cfg.frame_ms / 1000
    interval = min(cfg.partial_interval_ms, cfg.barge_in_partial_interval_ms) / 1000
    min_audio_s = 0.4  # StreamingConfig.min_audio_ms
    full = cfg.barge_in_full_window
    heard: list[str] = []
    buf: list[np.ndarray] = []
    onset: float | None = None
    busy_until = 0.0  # one decode at a time, like StreamingTranscriber
    next_due = min_audio_s
    pending: tuple[float, str, bool] | None = None  # (ready at, reliable text, final)
    paused_at: float | None = None
    released: float | None = None  # the hold let go on a no-words burst (decode can still cancel)
    held: float | None = None

    def decode(t: float, final: bool) -> tuple[float, str]:
        chunk = np.concatenate(buf) if buf else np.zeros(0, np.float32)
        result = transcribe(chunk, partial=not final, full_window=full)
        took = result.duration_s if asr_latency_s is None else asr_latency_s
        heard.append(f"{'f' if final else 'p'}:{result.text} [{result.avg_logprob:.2f}]")
        words = reliable_words(
            result.text,
            result.avg_logprob,
            result.no_speech_prob,
            min_logprob=cfg.barge_in_min_logprob,
            max_no_speech=cfg.barge_in_max_no_speech,
        )
        return t + took, words

    def outcome(decision: str, t: float | None, reason: str | None) -> BurstOutcome:
        at = None if t is None or onset is None else round((t - onset) * 1000, 1)
        hold = None if held is None or onset is None else round((held - onset) * 1000, 1)
        return BurstOutcome(text, kind, decision, at, hold, reason, heard)

    for i in range(len(pcm) // size):
        t = i * frame_s
        now = t + frame_s
        frame = pcm[i * size : (i + 1) * size]
        voiced = vad.is_speech(frame)
        level.feed(pcm16_to_float32(frame), is_speech=voiced, t=t, turn_id=0)
        if not seg.in_turn:  # over the agent: a loud burst starts (and holds it) on less voice
            seg.quick_start = voiced and level.recent_voiced_dbfs(now - 0.2) >= floor
        for ev in seg.feed(frame, voiced, t):
            if isinstance(ev, SpeechStarted) and onset is None:
                onset = ev.t
            elif isinstance(ev, SpeechPaused) and onset is not None and paused_at is None:
                paused_at = now
                if gate.heard_backchannel:
                    return outcome("resume", now, "backchannel_partial")
                if gate.heard_no_words:
                    released = now  # a short burst with no word has stopped: play on
                # the whole burst is decoded once the running partial is done
                ready, words = decode(max(now, busy_until), final=True)
                pending = (ready, words, True)
        if onset is None:
            continue
        if seg.in_turn and paused_at is None:
            buf.append(seg.take_new_audio())
        if pending is not None and now >= pending[0]:
            ready, words, final = pending
            pending = None
            speaking = seg.state == SpeechSegmenter.SPEAKING
            if final or speaking:
                if gate.update(voiced_ms=seg.voiced_ms, partial_text=words, final=final):
                    after = "" if released is None else "_after_resume"
                    return outcome("interrupt", now, f"{gate.reason}{after}")
                if final:
                    if released is not None:
                        return outcome("resume", released, "no_words_partial")
                    return outcome("resume", now, "backchannel")
        if paused_at is None and seg.state == SpeechSegmenter.SPEAKING:
            quiet_ms = level.quiet_ms(floor)
            if (
                held is None
                and seg.voiced_ms >= cfg.barge_in_pause_ms > 0
                and seg.unvoiced_ms == 0
                and quiet_ms == 0
                and level.recent_voiced_dbfs(now - 0.3) >= floor
            ):
                held = now
            if gate.update(voiced_ms=seg.voiced_ms):
                return outcome("interrupt", now, gate.reason)
            if gate.heard_backchannel and (
                seg.unvoiced_ms >= cfg.barge_in_release_ms or quiet_ms >= cfg.barge_in_quiet_release_ms
            ):
                return outcome("resume", now, "backchannel_partial")
            have = sum(b.size for b in buf) / RATE
            if pending is None and now >= busy_until and have >= next_due:
                busy_until, words = decode(now, final=False)
                pending = (busy_until, words, False)
                next_due = have + interval
    return outcome("ignored" if onset is None else "resume", None, None)


def pipeline_recognizer(config: PipelineConfig | None = None, model_settings=None):
    """The recognizer as ``VoiceRuntime`` builds it (window, threads and the clinical
    vocabulary prompt of ``config``), so decodes here match the pipeline's."""
    from voice.asr import WhisperRecognizer
    from voice.backends import make_whisper
    from voice.provisioning import ModelSettings, asr_model_dir

    settings = model_settings or ModelSettings.from_env()
    return make_whisper(WhisperRecognizer, asr_model_dir(settings), config or PipelineConfig())


@functools.cache
def _speech(text: str) -> np.ndarray:
    return cough_16k() if text == "<cough>" else trim_silence(synthesize_16k(text))


def run(
    *,
    config: PipelineConfig | None = None,
    asr_latency_s: float | None = None,
    transcribe: Callable[..., Transcription] | None = None,
    interruptions: Sequence[str] = INTERRUPTIONS,
    backchannels: Sequence[str] = BACKCHANNELS,
    verbose: bool = True,
) -> dict:
    """Judge every burst; print a table (``verbose``) and return the summary."""
    if transcribe is None:
        transcribe = pipeline_recognizer(config).transcribe
    outcomes = [
        simulate_burst(_speech(t), transcribe, text=t, kind=kind, config=config, asr_latency_s=asr_latency_s)
        for kind, items in (("interruption", interruptions), ("backchannel", backchannels))
        for t in items
    ]
    inter = [o for o in outcomes if o.kind == "interruption"]
    back = [o for o in outcomes if o.kind == "backchannel"]

    def times(group, decision):
        return sorted(o.decided_ms for o in group if o.decision == decision and o.decided_ms is not None)

    def median(values):
        return values[len(values) // 2] if values else None

    holds = sorted(o.held_ms for o in outcomes if o.held_ms is not None)
    summary = {
        "asr_latency_s": asr_latency_s,
        "interruptions": len(inter),
        "missed_interruptions": sum(o.decision != "interrupt" for o in inter),
        "interrupt_ms": {
            "p50": median(times(inter, "interrupt")),
            "max": max(times(inter, "interrupt"), default=None),
        },
        "backchannels": len(back),
        "false_interruptions": sum(o.decision == "interrupt" for o in back),
        "resume_ms": {"p50": median(times(back, "resume")), "max": max(times(back, "resume"), default=None)},
        "hold_ms": {"p50": median(holds), "max": max(holds, default=None)},
    }
    if verbose:
        for o in outcomes:
            at = "-" if o.decided_ms is None else f"{o.decided_ms:.0f}"
            hold = "-" if o.held_ms is None else f"{o.held_ms:.0f}"
            mark = "" if o.correct else "WRONG"
            print(
                f"{o.kind:12} {o.decision:9} {at:>6} ms (hold {hold:>4}) {str(o.reason):20} {mark:5} {o.text}  "
                + " | ".join(o.heard)
            )
        print(summary)
    return summary


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr-latency", type=float, default=None, help="model ASR latency (s)")
    args = parser.parse_args()
    run(asr_latency_s=args.asr_latency)
