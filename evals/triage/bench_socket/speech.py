"""What the benchmark's callers say: Piper-spoken lines, cached as WAVs.

First statements are what callers really open with: long, run-on, with commas and clause
pauses, numbers and lists of symptoms, as well as short ones. Follow-up answers are short.
Hesitant callers (``HESITANT_CALLS``) open with "um" / "er" and pause at them: the text is
spoken by Piper in one piece (its commas keep their unfinished intonation) and each pause Piper
makes at a comma is stretched to a set length (300-900 ms, the longest at the fillers), as
``evals.voice.endpointing`` builds its hesitant first statements, but with other statements.
Backchannels and interruptions are spoken over the agent. The lines are synthesized once
with the bundled Piper voice (noise terms off: the same audio every run) and cached under
``var/bench_socket/`` as 16 kHz WAVs, so later runs do not load Piper at all.
"""

from __future__ import annotations

import hashlib
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
CACHE_DIR = Path(__file__).resolve().parents[3] / "var" / "bench_socket"

# (first statement, follow-up answers). None of them is an emergency.
CALLS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("I have had a headache since this morning.", ("No.", "About two days.")),
    (
        "My son's nine, he's got a cough, since his cold last week he's been coughing at night, "
        "and now he says his ear hurts too.",
        ("No.", "Yes."),
    ),
    ("My throat has been sore for two days, and it hurts to swallow.", ("No, nothing like that.", "No.")),
    (
        "So I was cooking dinner, and I cut my finger on a knife, it's not a big cut, "
        "but it keeps opening up when I bend it.",
        ("Yes, it stopped.", "No."),
    ),
    (
        "I've had a rash on my arms for three days, it's red and itchy, "
        "and it's spreading a little bit every day.",
        ("No.", "No."),
    ),
    ("I twisted my ankle playing football on Saturday, and it's still swollen.", ("Yes, I can.", "No.")),
    (
        "My daughter's three, she's had a temperature since yesterday, about thirty eight, "
        "and she's not eating much, but she's drinking.",
        ("Yes.", "No."),
    ),
    ("I've been feeling sick, and I had diarrhoea twice this morning.", ("No.", "Since last night.")),
)
# Hesitant callers: (first statement, its pauses in ms at each comma / full stop in order,
# follow-up answers). Written for the bench, not taken from the endpointing evaluation's set.
HESITANT_CALLS: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (
    (
        "Um, I've had, er, a pain in my stomach since last night, and, um, it's getting worse.",
        (700, 300, 800, 400, 300, 900),
        ("No.", "Yes."),
    ),
    (
        "Er, it's my dad, he's, um, seventy eight, and he's been, er, coughing a lot for a week.",
        (600, 500, 300, 800, 500, 300, 700),
        ("No.", "No."),
    ),
    (
        "I've got, um, a sore ear, and, er, I think it's been, um, about three days.",
        (300, 800, 500, 300, 700, 300, 900),
        ("No.", "Yes."),
    ),
    (
        "So, um, I banged my knee, er, on Monday, and it's, um, still a bit stiff.",
        (300, 700, 300, 800, 500, 300, 600),
        ("Yes, I can.", "No."),
    ),
)
BACKCHANNELS: tuple[str, ...] = ("Mm-hmm.", "Okay.", "Uh-huh.", "Yeah.")
INTERRUPTIONS: tuple[str, ...] = (
    "Wait, I have a question first.",
    "Sorry, can I say something?",
    "Hang on, it's for my mum, not me.",
)
# Red flag for the dashboard alert: the clock starts at the end of RED_FLAG's audio.
ALERT_LEAD_IN = "Hello, I need some advice."
RED_FLAG = "My face is drooping."
ALERT_TAIL = "It started about an hour ago while I was walking up the stairs."


@dataclass(frozen=True)
class Utterance:
    text: str
    pcm: bytes  # 16 kHz s16le mono, whole 20 ms frames
    speech_start_ms: float  # first and last voiced sample
    speech_end_ms: float

    @property
    def frames(self) -> list[bytes]:
        return [self.pcm[i : i + FRAME_BYTES] for i in range(0, len(self.pcm), FRAME_BYTES)]


def _bounds(audio: np.ndarray, threshold: float = 0.01) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return 0.0, 0.0
    return float(loud[0]) * 1000.0 / RATE, float(loud[-1] + 1) * 1000.0 / RATE


def _synthesize(text: str) -> np.ndarray:
    from evals.speech import synthesize_16k

    return np.asarray(synthesize_16k(text), dtype=np.float32)


def stretch_pauses(audio: np.ndarray, breaks: int, pauses_ms: tuple[int, ...]) -> np.ndarray:
    """``audio`` with its ``breaks`` longest inner silences (Piper's comma / full-stop pauses,
    200-380 ms; gaps inside words are shorter) replaced, in order, by ``pauses_ms`` of silence."""
    from evals.speech import clause_gaps

    gaps = clause_gaps(audio, breaks)
    if len(gaps) != len(pauses_ms):
        raise ValueError(f"{len(gaps)} pauses found, {len(pauses_ms)} lengths given")
    margin = RATE * 20 // 1000
    parts, cursor = [], 0
    for (g0, g1), ms in zip(gaps, pauses_ms, strict=True):
        parts += [audio[cursor : g0 + margin], np.zeros(RATE * ms // 1000 - 2 * margin, dtype=np.float32)]
        cursor = g1 - margin
    parts.append(audio[cursor:])
    return np.concatenate(parts)


def _hesitant(text: str, pauses_ms: tuple[int, ...]) -> np.ndarray:
    from evals.speech import clause_breaks, trim_silence

    speech = trim_silence(_synthesize(text))
    return stretch_pauses(speech, clause_breaks(text), pauses_ms)


def utterance(text: str, *, pauses_ms: tuple[int, ...] = (), cache_dir: Path = CACHE_DIR) -> Utterance:
    """The line spoken by Piper (from the WAV cache when it is there); with ``pauses_ms`` a
    hesitant caller's line, its comma pauses stretched to those lengths."""
    name = f"piper-joe-medium|{text}" + (f"|{pauses_ms}" if pauses_ms else "")
    key = hashlib.sha1(name.encode()).hexdigest()[:16]
    path = cache_dir / f"{key}.wav"
    if path.exists():
        with wave.open(str(path), "rb") as w:
            pcm = w.readframes(w.getnframes())
    else:
        audio = _hesitant(text, pauses_ms) if pauses_ms else _synthesize(text)
        audio = np.clip(audio, -1.0, 1.0)
        pcm = (audio * 32767.0).astype("<i2").tobytes()
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(pcm)
        tmp.replace(path)
    if len(pcm) % FRAME_BYTES:
        pcm += b"\x00" * (FRAME_BYTES - len(pcm) % FRAME_BYTES)
    start, end = _bounds(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)
    return Utterance(text, pcm, start, end)


def joined(*parts: Utterance, gap_ms: int = 150) -> tuple[Utterance, list[float]]:
    """Lines spoken one after another with ``gap_ms`` of silence between; also returns where
    each part's speech ends in the joined audio (ms)."""
    gap = b"\x00\x00" * (RATE * gap_ms // 1000)
    pcm, ends, at = b"", [], 0.0
    for i, p in enumerate(parts):
        if i:
            pcm += gap
            at += gap_ms
        ends.append(at + p.speech_end_ms)
        pcm += p.pcm
        at += len(p.pcm) / 2 / RATE * 1000.0
    text = " ".join(p.text for p in parts)
    return Utterance(text, pcm, parts[0].speech_start_ms, ends[-1]), ends


def comfort_noise(frames: int, *, dbfs: float = -70.0, seed: int = 0) -> list[bytes]:
    """An open microphone in a quiet room (digital zeros would trip the dead-microphone check)."""
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal(frames * FRAME_BYTES // 2).astype(np.float32) * (10 ** (dbfs / 20))
    pcm = (np.clip(audio, -1, 1) * 32767.0).astype("<i2").tobytes()
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
