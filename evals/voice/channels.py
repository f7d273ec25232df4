"""Simulated phone lines and rooms for the affect evaluation (evals/voice/affect.py), made with sox.

A channel is applied to a whole turn as the segmenter hands it over (lead-in, speech, pauses and
tail), and to every turn of the same caller alike, baseline turns included: the same caller on
the same line. None of this is a real caller, phone or room; it asks whether features measured
on clean synthetic speech survive the obvious ways a call differs from it.

* ``clean``: as synthesized (the lead-in and tail's -65 dBFS floor only);
* ``phone``: a landline: band-limited to 300-3400 Hz, resampled to 8 kHz, G.711 mu-law
  companded (8-bit), back to 16 kHz;
* ``gsm``: a mobile: the same band and 8 kHz, through sox's GSM 06.10 full-rate codec;
* ``room``: a small room heard from a distance: sox ``reverb 50 50 30`` (reverberance 50%,
  HF damping 50%, room scale 30%) with a 20 ms pre-delay;
* ``noise``: a steady background (sox pink noise) held at a fixed level 15 dB under the
  caller's usual speech level (``ref_dbfs``), so it also sits in the pauses, and quiet speech
  (30 dB down) is under it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np

RATE = 16000
CHANNELS = ("clean", "phone", "gsm", "room", "noise")
NOISE_SNR_DB = 15.0
_F32 = ["-t", "raw", "-r", str(RATE), "-e", "floating-point", "-b", "32", "-c", "1"]


def _sox() -> str:
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    return exe


def _run(args: list[str], data: bytes = b"") -> bytes:
    return subprocess.run([_sox(), *args], input=data, capture_output=True, check=True).stdout


def active_level_dbfs(audio: np.ndarray, rate: int = RATE) -> float:
    """Speech level: the power of the 20 ms frames within 30 dB of the loudest ones (a simple
    active-speech level, so pauses and lead-in do not pull it down)."""
    n = rate // 50
    frames = np.asarray(audio, dtype=np.float64)[: audio.size // n * n].reshape(-1, n)
    if frames.size == 0:
        return -120.0
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = db[db >= np.percentile(db, 99) - 30]
    return float(10 * np.log10(np.mean(10 ** (loud / 10))))


def _narrowband(audio: np.ndarray, codec: list[str], ext: str) -> np.ndarray:
    x = np.ascontiguousarray(audio, dtype=np.float32).tobytes()
    coded = _run([*_F32, "-", "-r", "8000", "-c", "1", *codec, "-t", ext, "-", "sinc", "300-3400"], x)
    back = _run(["-t", ext, "-r", "8000", "-c", "1", *codec, "-", *_F32, "-"], coded)
    y = np.frombuffer(back, dtype=np.float32)
    # Keep the turn's length (the codecs pad to a frame).
    return np.pad(y, (0, max(0, audio.size - y.size)))[: audio.size].copy()


@functools.cache
def _pink(seconds: int = 60) -> np.ndarray:
    return np.frombuffer(_run(["-n", *_F32, "-", "synth", str(seconds), "pinknoise"]), np.float32).copy()


def pink_noise(samples: int, seed: int) -> np.ndarray:
    """``samples`` of sox pink noise, from a seed-chosen place in one minute of it."""
    src = _pink()
    reps = -(-samples // src.size) + 1
    src = np.tile(src, reps) if reps > 1 else src
    start = int(np.random.default_rng(seed).integers(0, src.size - samples + 1))
    return src[start : start + samples]


def apply(audio: np.ndarray, channel: str, *, seed: int = 0, ref_dbfs: float | None = None) -> np.ndarray:
    """``audio``: one turn, 16 kHz float32 mono; returns the turn as heard through ``channel``."""
    if channel == "clean":
        return audio
    if channel == "phone":
        return _narrowband(audio, ["-e", "mu-law", "-b", "8"], "raw")
    if channel == "gsm":
        return _narrowband(audio, [], "gsm")
    if channel == "room":
        x = np.ascontiguousarray(audio, dtype=np.float32).tobytes()
        y = np.frombuffer(
            _run([*_F32, "-", *_F32, "-", "reverb", "50", "50", "30", "100", "20"], x), np.float32
        )
        return y[: audio.size].copy()
    if channel == "noise":
        if ref_dbfs is None:
            ref_dbfs = active_level_dbfs(audio)
        noise = pink_noise(audio.size, seed)
        gain = 10 ** ((ref_dbfs - NOISE_SNR_DB - active_level_dbfs(noise)) / 20)
        return (audio + gain * noise).astype(np.float32)
    raise ValueError(channel)
