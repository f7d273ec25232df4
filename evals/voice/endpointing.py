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

from evals.speech import RATE, clause_breaks, clause_gaps, synthesize_16k, trim_silence
from voice.audio import float32_to_pcm16, frame_bytes
from voice.endpointing import EndpointConfig, EndpointPolicy
from voice.events import SpeechPaused, SpeechResumed, SpeechStarted
from voice.interfaces import Transcription
from voice.vad import SegmenterConfig, SpeechSegmenter, WebRtcVad

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
# Realistic first statements (issue 12): long, run on with commas and clause breaks, ages,
# numbers and lists of symptoms. Each is spoken in one piece by Piper (so a comma keeps its
# rising, unfinished intonation) and its pause at every comma / full stop is stretched to
# 300-900 ms (``build_run_on``); an end of turn before the last word is a cut-off.
REALISTIC_TEXTS: tuple[str, ...] = (
    "My son's nine, he's got asthma, and since his cold he's been wheezing a lot more at night.",
    "My little boy's three. He's had a temperature since yesterday, and now he's got a rash on his tummy.",
    "I'm sixty two, I've got diabetes, and I've had a pain in my left foot for about a week.",
    "My mum's eighty four, she fell in the kitchen this morning, and she can't put any weight on her leg.",
    "I've had a cough, a sore throat, a runny nose, and a temperature for three days.",
    "It started on Sunday, it's a sharp pain under my ribs on the right, and it gets worse after I eat.",
    "My daughter is six months old, she's been sick four times today, and she won't take her bottle.",
    "I'm calling about my husband. He's seventy, he's been confused since lunchtime, and his speech is slurred.",
    "I'm thirty five weeks pregnant, I've got a bad headache, and my feet are really swollen.",
    "So I cut my hand on a knife, about an hour ago, it's quite deep, and it's still bleeding a bit.",
    "I've been getting headaches, every morning, for about two weeks now, and paracetamol isn't helping.",
    "My granddad's eighty, he's had a fall, he hit his head on the table, and he's a bit drowsy.",
    "I'm twenty four, I've had diarrhoea since Tuesday, and I'm feeling really weak and dizzy.",
    "My son is four, he's got a fever of thirty nine, and he's been pulling at his ear all night.",
    "It's my wife, she's forty, she's had chest pain on and off all day, and now she feels sweaty.",
    "I twisted my ankle playing football, on Saturday, it's swollen and bruised, and I can just about walk on it.",
    "My baby's two weeks old. She's very sleepy, she's not feeding well, and she feels hot.",
    "I've got a rash on my arms, my legs, and my back, and it's really itchy.",
    "Hi, I'm fifty eight, I've got high blood pressure, and I've been getting dizzy when I stand up.",
    "My daughter's seven, she's got a sore tummy, she's been sick twice, and it's worse on the right side.",
    "I've been feeling low, for a few months now, I'm not sleeping, and I've lost interest in everything.",
    "My dad's seventy six, he's on warfarin, and he's had a nosebleed for forty minutes that won't stop.",
    "I burnt my hand on the oven, about twenty minutes ago, it's blistering, and it's about the size of my palm.",
    "My little girl's two, she's got a cough, a runny nose, and she's breathing quite fast.",
    "I'm forty five, I've had a pain in my lower back, since I lifted a box on Monday, and it goes down my leg.",
)
# The same kind of statement, hesitant: fillers and pauses at hesitation points as well.
HESITANT_LONG_TEXTS: tuple[str, ...] = (
    "Um, my son's nine, and, er, he's got asthma, and he's been wheezing since his cold.",
    "So, my little boy's three, and he's had, um, a temperature since yesterday.",
    "I'm, er, sixty two, and I've had this, um, pain in my foot for about a week.",
    "Well, my mum's eighty four, and she, um, fell this morning, and she can't walk.",
    "I've got, um, a cough, and, er, a sore throat, and a temperature.",
    "It's my, er, husband, he's seventy, and he's been, um, confused since lunchtime.",
    "Um, I cut my hand, and it's, er, still bleeding a bit.",
    "My daughter's, um, six months old, and she's been, er, sick four times today.",
)
_PAUSES_MS = (300, 500, 700, 900, 400, 800, 600)


# Categories spoken as a first statement (the policy's open-statement mode).
OPEN_CATEGORIES = frozenset({"realistic", "hesitant_long"})

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


def build_run_on(
    text: str,
    *,
    seed: int = 0,
    length_scale: float = 1.0,
    lead_ms: int = 400,
    tail_ms: int = 2000,
    noise_dbfs: float = -65.0,
    synth: Callable[..., np.ndarray] = synthesize_16k,
) -> Utterance:
    """``text`` spoken in one piece, each pause Piper makes at a comma / full stop stretched to
    300-900 ms (fixed cycle shifted by ``seed``). Piper's pauses there (200-380 ms) are longer
    than the gaps inside words (<= 160 ms), so the longest gaps are the clause breaks."""
    speech = trim_silence(synth(text) if length_scale == 1.0 else synth(text, length_scale))
    gaps = clause_gaps(speech, clause_breaks(text))
    margin = RATE * 20 // 1000
    parts = [np.zeros(RATE * lead_ms // 1000, dtype=np.float32)]
    pos, cursor = parts[0].size, 0
    pieces: list[Piece] = []
    pauses: list[tuple[float, float]] = []
    for k, (g0, g1) in enumerate(gaps, start=1):
        chunk = speech[cursor : g0 + margin]
        pause_ms = _PAUSES_MS[(seed + k) % len(_PAUSES_MS)]
        gap = np.zeros(RATE * pause_ms // 1000, dtype=np.float32)
        parts += [chunk, gap]
        pauses.append(((pos + chunk.size) / RATE, (pos + chunk.size + gap.size) / RATE))
        pos += chunk.size + gap.size
        cursor = g1 - margin
        pieces.append(pause_ms)
    parts.append(speech[cursor:])
    start_s = lead_ms / 1000
    end_s = (pos + speech.size - cursor) / RATE
    parts.append(np.zeros(RATE * tail_ms // 1000, dtype=np.float32))
    audio = np.concatenate(parts)
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        audio = audio + rng.normal(0, 10 ** (noise_dbfs / 20), audio.size).astype(np.float32)
    return Utterance((text, *pieces), audio.astype(np.float32), start_s, end_s, tuple(pauses))


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
    open_statement: bool = False,
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
            open_statement=open_statement,
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


CATEGORIES: dict[str, tuple] = {
    "realistic": REALISTIC_TEXTS,  # run-on texts (build_run_on)
    "hesitant_long": HESITANT_LONG_TEXTS,
    "hesitant": HESITANT,
    "hard": HARD,
    "fluent": FLUENT,
}


def run(
    *,
    endpoint_config: EndpointConfig | None = None,
    segmenter_config: SegmenterConfig | None = None,
    asr_latency_s: float | None = None,
    transcribe: Callable[[np.ndarray], Transcription] | None = None,
    speaking_rates: Sequence[float] = (1.0, 1.2),
    categories: Sequence[str] = tuple(CATEGORIES),
    verbose: bool = True,
) -> dict:
    """Run the evaluation; print a table (``verbose``) and return the summary numbers.

    ``realistic`` and ``hesitant_long`` are spoken as a caller's first statement (the policy's
    open-statement mode); ``hesitant``, ``hard`` and ``fluent`` as answers to a question.
    """
    policy = EndpointPolicy(endpoint_config)
    seg_cfg = segmenter_config or SegmenterConfig()
    transcribe = transcribe or _whisper_transcriber()
    outcomes: list[Outcome] = []
    for category in categories:
        items = CATEGORIES[category]
        for (n, pieces), rate_scale in itertools.product(enumerate(items), speaking_rates):
            if isinstance(pieces, str):
                utt = build_run_on(pieces, seed=n, length_scale=rate_scale)
            else:
                utt = build_utterance(pieces, seed=n, length_scale=rate_scale)
            outcomes.append(
                simulate(
                    utt,
                    transcribe,
                    policy=policy,
                    segmenter_config=seg_cfg,
                    asr_latency_s=asr_latency_s,
                    category=category,
                    open_statement=category in OPEN_CATEGORIES,
                )
            )
            if rate_scale != 1.0:
                outcomes[-1].text += f"  (slow x{rate_scale})"

    def group(cat: str) -> list[Outcome]:
        return [o for o in outcomes if o.category == cat]

    def rate(cat: str) -> float | None:
        g = group(cat)
        return sum(o.false_cutoff for o in g) / len(g) if g else None

    def delays(cats) -> list[float]:
        return [o.delay_ms for o in outcomes if o.category in cats and o.delay_ms is not None]

    all_delays = delays(categories)
    fluent = delays(("fluent",))
    asr = [ms for o in outcomes for ms in o.asr_ms]
    summary = {
        "utterances": len(outcomes),
        "false_cutoff_rate": rate("hesitant"),
        "false_cutoffs": sum(o.false_cutoff for o in group("hesitant")),
        "hesitant": len(group("hesitant")),
        "false_cutoff_rate_hard": rate("hard"),
        "by_category": {
            cat: {
                "n": len(group(cat)),
                "false_cutoffs": sum(o.false_cutoff for o in group(cat)),
                "false_cutoff_rate": rate(cat),
                "delay_ms": _dist(delays((cat,))),
            }
            for cat in categories
        },
        "mean_delay_ms": statistics.fmean(all_delays) if all_delays else None,
        "p50_delay_ms": _pct(all_delays, 0.5),
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


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _dist(values: list[float]) -> dict:
    """End-of-turn delay distribution (the in-process part of the response onset)."""
    return {
        "n": len(values),
        "p10": _pct(values, 0.1),
        "p50": _pct(values, 0.5),
        "p90": _pct(values, 0.9),
        "p95": _pct(values, 0.95),
        "max": max(values) if values else None,
    }


def _print_table(outcomes: list[Outcome], summary: dict) -> None:
    print(f"{'category':13} {'cut':>3} {'delay ms':>8} {'reason':17} utterance / transcript at decision")
    for o in outcomes:
        delay = "-" if o.delay_ms is None else f"{o.delay_ms:.0f}"
        print(f"{o.category:13} {'CUT' if o.false_cutoff else '':>3} {delay:>8} {str(o.reason):17} {o.text}")
        print(f"{'':45} heard at pauses [last-word prob]: {' | '.join(o.heard)}")
    print(f"{'category':13} {'cut-offs':>12} {'delay p10':>9} {'p50':>6} {'p90':>6} {'max':>6}")
    for cat, c in summary["by_category"].items():
        d = c["delay_ms"]

        def ms(v):
            return "-" if v is None else f"{v:.0f}"

        print(
            f"{cat:13} {c['false_cutoffs']:>4}/{c['n']:<3} {c['false_cutoff_rate']:>4.0%} {ms(d['p10']):>9} "
            f"{ms(d['p50']):>6} {ms(d['p90']):>6} {ms(d['max']):>6}"
        )
    if summary["mean_asr_ms"] is not None:
        print(f"mean ASR decode {summary['mean_asr_ms']:.0f} ms; reasons {summary['reasons']}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--asr-latency", type=float, default=None, help="model ASR latency (s) instead of measuring"
    )
    parser.add_argument(
        "--only", nargs="*", choices=sorted(CATEGORIES), default=None, help="categories to run (default: all)"
    )
    parser.add_argument("--rates", type=float, nargs="*", default=[1.0, 1.2], help="Piper length scales")
    args = parser.parse_args()
    run(asr_latency_s=args.asr_latency, categories=args.only or tuple(CATEGORIES), speaking_rates=args.rates)
