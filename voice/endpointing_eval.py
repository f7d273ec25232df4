"""End-of-turn evaluation on synthetic hesitant speech (``make bench`` calls :func:`run`).

Utterances are spoken by the bundled Piper voice, fragment by fragment, with exact
silences inserted between fragments ("I have a pain in my" [600 ms] "chest."). Each is
streamed through the real chain in simulated time: WebRTC VAD -> SpeechSegmenter -> at
each pause a speculative final decode with the real Whisper model -> EndpointPolicy on
every frame. The decode's measured wall time is charged to the simulated clock, so the
reported delay includes ASR latency on this machine.

- false cut-off: the turn was ended inside one of the inserted pauses;
- end-of-turn delay: decision time minus the end of the last spoken word.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from voice.audio import float32_to_pcm16, frame_bytes, pcm16_to_float32, resample
from voice.endpointing import EndpointConfig, EndpointPolicy
from voice.events import SpeechPaused, SpeechResumed, SpeechStarted
from voice.interfaces import Transcription
from voice.vad import SegmenterConfig, SpeechSegmenter, WebRtcVad

RATE = 16000
Piece = str | int  # text to speak, or a pause in ms

# Pauses at hesitation points: fillers, conjunctions, determiners, prepositions, open clauses.
HESITANT: tuple[tuple[Piece, ...], ...] = (
    ("I have a pain in my", 600, "chest."),
    ("Um,", 700, "I think it started yesterday."),
    ("It started when I was", 600, "climbing the stairs."),
    ("The pain goes down my", 700, "left arm."),
    ("I've been feeling", 600, "really dizzy since this morning."),
    ("My chest feels", 700, "tight."),
    ("Yesterday I fell and", 800, "hit my head."),
    ("Uh,", 800, "I'm not sure."),
    ("I have a headache and", 600, "some nausea."),
    ("It hurts when I", 700, "breathe in."),
    ("I think it's", 600, "my heart."),
    ("I took some ibuprofen but", 700, "it didn't help."),
    ("It's been about", 800, "three days."),
    ("So", 700, "the pain started this morning."),
    ("I can't really", 600, "feel my fingers."),
    ("My temperature is", 700, "thirty nine degrees."),
    ("I'm having trouble with my", 600, "breathing."),
    ("Because", 700, "it keeps getting worse."),
    ("The pain is in the", 600, "lower right side of my stomach."),
    ("Er,", 600, "I think I might be", 700, "allergic to penicillin."),
    ("It feels like", 800, "someone is sitting on my chest."),
    ("I have diabetes and", 900, "high blood pressure."),
    ("If I walk up the stairs", 600, "I get short of breath."),
    ("The baby has had a fever of", 700, "thirty nine point five."),
    ("My husband said I should", 700, "call you."),
)
# A pause right after a clause that sounds finished: the policy is expected to end the
# turn here (so would most people); reported separately, not part of the goal.
HARD: tuple[tuple[Piece, ...], ...] = (
    ("I took two", 600, "paracetamol tablets."),
    ("I've had a cough for two weeks", 700, "and a fever."),
    ("It started yesterday", 700, "after lunch."),
    ("I feel sick", 600, "and I've been vomiting."),
)
FLUENT: tuple[tuple[Piece, ...], ...] = (
    ("I have a pain in my chest.",),
    ("It started yesterday evening.",),
    ("No, I don't have any allergies.",),
    ("Yes.",),
    ("About three days ago.",),
    ("I feel very short of breath.",),
    ("My daughter has a high fever and a rash.",),
    ("I'm taking metformin for diabetes.",),
)


# --- speech synthesis (shared with the tests) -------------------------------------------


@functools.cache
def _piper_voice():
    from piper import PiperVoice

    from voice.provisioning import ModelSettings, piper_voice_paths

    onnx, config = piper_voice_paths(ModelSettings.from_env())
    return PiperVoice.load(str(onnx), config_path=str(config))


@functools.lru_cache(maxsize=512)
def synthesize_16k(text: str, length_scale: float = 1.0) -> np.ndarray:
    """Piper speech for ``text`` as 16 kHz float32 (cached per process).

    Piper's noise terms are set to zero so the same text always gives the same audio
    (with them, every call differs and so do Whisper's guesses); ``length_scale`` > 1
    speaks more slowly.
    """
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale)
    chunks = list(voice.synthesize(text, syn_config=config))
    pcm = b"".join(c.audio_int16_bytes for c in chunks)
    audio = resample(pcm16_to_float32(pcm), chunks[0].sample_rate, RATE)
    audio.setflags(write=False)
    return audio


def trim_silence(audio: np.ndarray, threshold: float = 0.004, margin_ms: int = 20) -> np.ndarray:
    """Drop Piper's leading/trailing silence so inserted pauses have the stated length."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    margin = RATE * margin_ms // 1000
    return audio[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


@dataclass(frozen=True)
class Utterance:
    pieces: tuple[Piece, ...]
    audio: np.ndarray  # 16 kHz float32, lead-in silence + speech + tail silence
    speech_start_s: float
    speech_end_s: float  # end of the last spoken fragment
    pauses: tuple[tuple[float, float], ...]  # inserted pauses (start_s, end_s)

    @property
    def text(self) -> str:
        return " ".join(p for p in self.pieces if isinstance(p, str))


def build_utterance(
    pieces: Sequence[Piece],
    *,
    lead_ms: int = 400,
    tail_ms: int = 2000,
    noise_dbfs: float = -65.0,
    synth: Callable[[str], np.ndarray] = synthesize_16k,
    seed: int = 0,
    length_scale: float = 1.0,
) -> Utterance:
    """Speak text pieces with exact pauses (ints, ms) between them, over a faint noise floor."""
    parts = [np.zeros(RATE * lead_ms // 1000, dtype=np.float32)]
    pos = parts[0].size
    pauses: list[tuple[float, float]] = []
    start = end = None
    for piece in pieces:
        if isinstance(piece, int):
            pauses.append((pos / RATE, (pos + RATE * piece // 1000) / RATE))
            chunk = np.zeros(RATE * piece // 1000, dtype=np.float32)
        else:
            chunk = trim_silence(synth(piece) if length_scale == 1.0 else synth(piece, length_scale))
            start = pos / RATE if start is None else start
            end = (pos + chunk.size) / RATE
        parts.append(chunk)
        pos += chunk.size
    parts.append(np.zeros(RATE * tail_ms // 1000, dtype=np.float32))
    audio = np.concatenate(parts)
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        audio = audio + rng.normal(0, 10 ** (noise_dbfs / 20), audio.size).astype(np.float32)
    return Utterance(tuple(pieces), audio.astype(np.float32), start or 0.0, end or 0.0, tuple(pauses))


def speech_pcm16k(text: str, length_scale: float = 1.0) -> bytes:
    return float32_to_pcm16(synthesize_16k(text, length_scale))


# --- simulation -------------------------------------------------------------------------


@dataclass
class Outcome:
    category: str
    text: str
    ended_at_s: float | None
    reason: str | None
    false_cutoff: bool
    delay_ms: float | None  # decision - end of speech (None when cut off)
    transcript: str | None  # what the policy saw at the decision
    asr_ms: list[float] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)  # speculative transcript at each pause


def simulate(
    utt: Utterance,
    transcribe: Callable[[np.ndarray], Transcription],
    *,
    policy: EndpointPolicy,
    segmenter_config: SegmenterConfig,
    vad_aggressiveness: int = 2,
    asr_latency_s: float | None = None,
    category: str = "",
) -> Outcome:
    """Stream ``utt`` frame by frame; ``transcribe(audio)`` is the speculative final decode.

    ``asr_latency_s`` replaces the measured decode time (to model a faster ASR device).
    """
    cfg = segmenter_config
    vad = WebRtcVad(RATE, cfg.frame_ms, vad_aggressiveness)
    seg = SpeechSegmenter(cfg)
    pcm = float32_to_pcm16(utt.audio)
    size = frame_bytes(RATE, cfg.frame_ms)
    frame_s = cfg.frame_ms / 1000
    pending: tuple[float, Transcription] | None = None  # (ready at, result) of the speculative final
    asr_ms: list[float] = []
    heard: list[str] = []
    for i in range(len(pcm) // size):
        t = i * frame_s
        frame = pcm[i * size : (i + 1) * size]
        for ev in seg.feed(frame, vad.is_speech(frame), t):
            if isinstance(ev, SpeechPaused):
                result = transcribe(seg.turn_audio().copy())
                took = result.duration_s
                asr_ms.append(took * 1000)
                last = f" [{result.word_probs[-1]:.2f}]" if result.word_probs else ""
                heard.append(result.text + last)
                pending = (t + frame_s + (took if asr_latency_s is None else asr_latency_s), result)
            elif isinstance(ev, SpeechResumed | SpeechStarted):
                pending = None
        if seg.state != SpeechSegmenter.PAUSED:
            continue
        now = t + frame_s
        result = pending[1] if pending is not None and now >= pending[0] else None
        transcript = result.text if result is not None else None
        last_prob = result.word_probs[-1] if result is not None and result.word_probs else None
        decision = policy.decide(
            silence_ms=seg.silence_ms(now),
            transcript=transcript,
            turn_ms=seg.turn_ms(now),
            last_word_prob=last_prob,
        )
        if decision.end:
            cut = now < utt.speech_end_s
            delay = None if cut else (now - utt.speech_end_s) * 1000
            return Outcome(category, utt.text, now, decision.reason, cut, delay, transcript, asr_ms, heard)
    return Outcome(category, utt.text, None, None, False, None, None, asr_ms, heard)


def _whisper_transcriber() -> Callable[[np.ndarray], Transcription]:
    from voice.asr import WhisperRecognizer

    recognizer = WhisperRecognizer.from_settings()
    # The same call StreamingTranscriber.speculative_final makes (word probabilities on).
    return functools.partial(recognizer.transcribe, word_timestamps=True)


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run(
    *,
    endpoint_config: EndpointConfig | None = None,
    segmenter_config: SegmenterConfig | None = None,
    asr_latency_s: float | None = None,
    transcribe: Callable[[np.ndarray], Transcription] | None = None,
    speaking_rates: Sequence[float] = (1.0, 1.2),
    verbose: bool = True,
) -> dict:
    """Run the evaluation; print a table (``verbose``) and return the summary numbers."""
    policy = EndpointPolicy(endpoint_config)
    seg_cfg = segmenter_config or SegmenterConfig()
    transcribe = transcribe or _whisper_transcriber()
    outcomes: list[Outcome] = []
    for category, items in (("hesitant", HESITANT), ("hard", HARD), ("fluent", FLUENT)):
        for (n, pieces), rate_scale in itertools.product(enumerate(items), speaking_rates):
            utt = build_utterance(pieces, seed=n, length_scale=rate_scale)
            outcomes.append(
                simulate(
                    utt,
                    transcribe,
                    policy=policy,
                    segmenter_config=seg_cfg,
                    asr_latency_s=asr_latency_s,
                    category=category,
                )
            )
            if rate_scale != 1.0:
                outcomes[-1].text += f"  (slow x{rate_scale})"

    def rate(cat: str) -> float:
        group = [o for o in outcomes if o.category == cat]
        return sum(o.false_cutoff for o in group) / len(group)

    def delays(cats: tuple[str, ...]) -> list[float]:
        return [o.delay_ms for o in outcomes if o.category in cats and o.delay_ms is not None]

    all_delays = delays(("hesitant", "hard", "fluent"))
    fluent = delays(("fluent",))
    asr = [ms for o in outcomes for ms in o.asr_ms]
    summary = {
        "utterances": len(outcomes),
        "false_cutoff_rate": rate("hesitant"),
        "false_cutoffs": sum(o.false_cutoff for o in outcomes if o.category == "hesitant"),
        "hesitant": sum(o.category == "hesitant" for o in outcomes),
        "false_cutoff_rate_hard": rate("hard"),
        "mean_delay_ms": statistics.fmean(all_delays) if all_delays else None,
        "p95_delay_ms": _p95(all_delays),
        "mean_delay_ms_fluent": statistics.fmean(fluent) if fluent else None,
        "p95_delay_ms_fluent": _p95(fluent),
        "mean_asr_ms": statistics.fmean(asr) if asr else None,
        "asr_latency_s": asr_latency_s,
        "speaking_rates": list(speaking_rates),
        "reasons": {
            r: sum(o.reason == r for o in outcomes) for r in sorted({str(o.reason) for o in outcomes})
        },
        "missed": sum(o.ended_at_s is None for o in outcomes),
    }
    if verbose:
        _print_table(outcomes, summary)
    return summary


def _print_table(outcomes: list[Outcome], summary: dict) -> None:
    print(f"{'category':9} {'cut':>3} {'delay ms':>8} {'reason':17} utterance / transcript at decision")
    for o in outcomes:
        delay = "-" if o.delay_ms is None else f"{o.delay_ms:.0f}"
        print(f"{o.category:9} {'CUT' if o.false_cutoff else '':>3} {delay:>8} {str(o.reason):17} {o.text}")
        print(f"{'':41} heard at pauses [last-word prob]: {' | '.join(o.heard)}")
    print(
        f"false cut-offs (hesitant): {summary['false_cutoffs']}/{summary['hesitant']} "
        f"= {summary['false_cutoff_rate']:.1%}; hard cases: {summary['false_cutoff_rate_hard']:.0%} cut"
    )
    print(
        f"end-of-turn delay: mean {summary['mean_delay_ms']:.0f} ms, p95 {summary['p95_delay_ms']:.0f} ms "
        f"(fluent: mean {summary['mean_delay_ms_fluent']:.0f}, p95 {summary['p95_delay_ms_fluent']:.0f}); "
        f"mean ASR decode {summary['mean_asr_ms']:.0f} ms"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--asr-latency", type=float, default=None, help="model ASR latency (s) instead of measuring"
    )
    args = parser.parse_args()
    run(asr_latency_s=args.asr_latency)
