"""Per-turn paralinguistic features: how something was said, measured with Praat (parselmouth).

One finished turn's audio (the segmenter's ``TurnAudio``, 16 kHz float32) gives one
:class:`ParalinguisticFeatures`:

* **pitch** level and variability in semitones re 100 Hz (Praat's autocorrelation pitch,
  voiced frames only);
* **loudness**: the mean level of the sounding frames in dBFS (Praat's intensity contour);
* **speech rate**: syllable nuclei (intensity peaks that are voiced and stand out by a dip of
  ``dip_db`` from the previous one: de Jong & Wempe 2009) per second, over the whole span
  (speech rate) and over sounding time only (articulation rate);
* **pause structure**: the sounding stretches separated by silences of ``min_pause_s`` or
  more are phrases; their count, mean length (seconds and syllables), and the pauses per
  second: a caller who can say only a few words per breath has many short phrases;
* **voice quality**: harmonics-to-noise ratio (from the pitch's autocorrelation strength),
  local jitter and shimmer (Praat's PointProcess), and the voiced fraction of sounding time
  (near 0 for a whisper).

CPU work (about 3-4 ms per second of audio on one core): callers on an event loop run
:func:`extract` in an executor. Audio longer than ``max_audio_s`` is cut to its last
``max_audio_s`` seconds so one turn's cost stays bounded (docs/affect.md, the budget).
No transcript is needed; :func:`extract` takes the word count when there is one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

# Praat's intensity is dB re 2e-5 Pa for a signal in Pa; a full-scale square wave (x^2 = 1) reads
# 20*log10(1/2e-5) = 93.98 dB, so subtracting it gives dBFS.
_DB_TO_DBFS = 20.0 * math.log10(1.0 / 2e-5)
_SEMITONE_REF_HZ = 100.0


@dataclass(frozen=True, slots=True)
class ExtractionConfig:
    pitch_floor_hz: float = 75.0
    pitch_ceiling_hz: float = 500.0
    time_step_s: float = 0.01
    # A frame is sounding when its intensity is within silence_db of the turn's loud end (99th
    # percentile) and above floor_dbfs (a quiet line is not all "speech").
    silence_db: float = 25.0
    floor_dbfs: float = -65.0
    # ... and stand noise_margin_db above the turn's own noise floor (its noise_percentile-th
    # percentile frame: a turn carries the segmenter's lead-in and tail, so its quietest frames
    # are the line or the room). On a noisy line the loud-end rule alone counts the background
    # as speech, so pauses vanish and speech looks slow (evals/voice/channels.py, `noise`).
    noise_percentile: float = 5.0
    noise_margin_db: float = 6.0
    min_pause_s: float = 0.25  # a silence this long between sounds separates two phrases
    min_sound_s: float = 0.08  # shorter sounding blips (clicks, breath noise) are not a phrase
    dip_db: float = 2.0  # a syllable nucleus must rise this much above the dip before it
    max_audio_s: float = 12.0  # analyse at most the last 12 s of a turn (the cost budget)
    voice_quality: bool = True  # jitter/shimmer (the PointProcess is about 40% of the cost)


DEFAULT_CONFIG = ExtractionConfig()


@dataclass(frozen=True, slots=True)
class ParalinguisticFeatures:
    """One turn, measured. ``None`` where the turn had no voiced frames to measure it on."""

    duration_s: float  # audio analysed
    sounding_s: float  # time inside phrases (pauses excluded)
    span_s: float  # first sound to last sound
    phrases: int
    pauses: int  # silences of min_pause_s or more between two phrases
    mean_phrase_s: float
    max_phrase_s: float
    mean_pause_s: float
    pauses_per_s: float  # pauses per second of span
    syllables: int  # syllable nuclei
    syllables_per_phrase: float
    speech_rate: float  # syllables per second of span
    articulation_rate: float  # syllables per second of sounding time
    level_dbfs: float | None  # mean level of the sounding frames
    voiced_fraction: float  # voiced frames / sounding frames (a whisper: near 0)
    pitch_median_st: float | None  # semitones re 100 Hz
    pitch_sd_st: float | None
    hnr_db: float | None
    jitter_pct: float | None
    shimmer_pct: float | None
    words: int | None = None  # from the transcript, when the caller has one
    cost_ms: float = 0.0  # CPU time of the extraction (this thread)
    noise_floor_dbfs: float | None = None  # the turn's quietest frames (line or room noise)

    @property
    def words_per_phrase(self) -> float | None:
        return self.words / self.phrases if self.words and self.phrases else None

    @property
    def pauses_per_10_words(self) -> float | None:
        return 10.0 * self.pauses / self.words if self.words else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParalinguisticFeatures:
        """Back from :meth:`to_dict` (a stored baseline turn; the derived ratios are dropped).
        Raises ``TypeError`` when a field without a default is missing (an older record)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def to_dict(self) -> dict[str, Any]:
        d = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        wpp, p10 = self.words_per_phrase, self.pauses_per_10_words
        d["words_per_phrase"] = round(wpp, 2) if wpp is not None else None
        d["pauses_per_10_words"] = round(p10, 2) if p10 is not None else None
        return d


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is true."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _phrases(sounding: np.ndarray, step: float, cfg: ExtractionConfig) -> list[tuple[int, int]]:
    """Sounding runs, joined across gaps shorter than min_pause_s, blips dropped."""
    runs = [r for r in _runs(sounding) if (r[1] - r[0]) * step >= cfg.min_sound_s]
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and (start - merged[-1][1]) * step < cfg.min_pause_s:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _nuclei(db: np.ndarray, voiced: np.ndarray, inside: np.ndarray, threshold: float, dip_db: float) -> int:
    """Intensity peaks above ``threshold``, voiced, inside a phrase, each rising ``dip_db`` above
    the lowest point since the previous counted peak (de Jong & Wempe's syllable-nucleus rule)."""
    if db.size < 3:
        return 0
    peaks = np.flatnonzero((db[1:-1] > db[:-2]) & (db[1:-1] >= db[2:])) + 1
    count, prev = 0, -1
    for i in peaks:
        if db[i] < threshold or not voiced[i] or not inside[i]:
            continue
        if prev < 0 or db[i] - float(db[prev : i + 1].min()) >= dip_db:
            count += 1
            prev = int(i)
        elif db[i] > db[prev]:
            prev = int(i)  # a higher peak of the same syllable: later dips are measured from it
    return count


def extract(
    audio: np.ndarray,
    sample_rate: int = 16000,
    *,
    words: int | None = None,
    config: ExtractionConfig = DEFAULT_CONFIG,
) -> ParalinguisticFeatures:
    """Blocking (CPU): measure one turn. ``audio``: mono float in [-1, 1]."""
    import parselmouth  # Praat; imported here so importing voice/ stays light
    from parselmouth.praat import call

    t0 = time.thread_time()
    cfg = config
    x = np.asarray(audio, dtype=np.float64).ravel()
    keep = int(cfg.max_audio_s * sample_rate)
    if x.size > keep:
        x = x[-keep:]
    duration = x.size / sample_rate if sample_rate else 0.0
    if x.size < int(0.1 * sample_rate):
        return _empty(duration, words, t0)
    snd = parselmouth.Sound(x, sampling_frequency=sample_rate)
    step = cfg.time_step_s
    # 50 Hz: a ~64 ms analysis window, de Jong & Wempe's smoothing; a shorter one finds extra
    # "nuclei" inside long vowels (and in time-stretched speech, so slow speech looked fast).
    intensity = snd.to_intensity(minimum_pitch=50.0, time_step=step)
    pitch = snd.to_pitch_ac(
        time_step=step, pitch_floor=cfg.pitch_floor_hz, pitch_ceiling=cfg.pitch_ceiling_hz
    )
    db = intensity.values[0] - _DB_TO_DBFS
    t_int = intensity.xs()
    p = pitch.selected_array
    f0_all, strength_all = p["frequency"], p["strength"]
    # Pitch frames on the intensity time grid (both 10 ms, offsets differ by the windows).
    idx = np.clip(np.searchsorted(pitch.xs(), t_int), 0, max(0, f0_all.size - 1))
    f0 = f0_all[idx] if f0_all.size else np.zeros_like(db)
    voiced = f0 > 0
    noise_floor = float(np.percentile(db, cfg.noise_percentile)) if db.size else None
    threshold = (
        max(float(np.percentile(db, 99)) - cfg.silence_db, noise_floor + cfg.noise_margin_db, cfg.floor_dbfs)
        if noise_floor is not None
        else 0.0
    )
    phrases = _phrases(db > threshold, step, cfg)
    if not phrases:
        return _empty(duration, words, t0)
    inside = np.zeros(db.size, dtype=bool)
    for a, b in phrases:
        inside[a:b] = True
    lengths = [(b - a) * step for a, b in phrases]
    gaps = [(phrases[i + 1][0] - phrases[i][1]) * step for i in range(len(phrases) - 1)]
    sounding_s = float(sum(lengths))
    span_s = (phrases[-1][1] - phrases[0][0]) * step
    syllables = _nuclei(db, voiced, inside, threshold, cfg.dip_db)
    voiced_in = voiced & inside
    voiced_fraction = float(voiced_in.sum() / inside.sum()) if inside.any() else 0.0
    # Level: mean power of the sounding frames, in dB.
    level = float(10.0 * np.log10(np.mean(10.0 ** (db[inside] / 10.0))))
    pitch_median = pitch_sd = hnr = jitter = shimmer = None
    f0v = f0_all[f0_all > 0]
    if f0v.size >= 5:
        st = 12.0 * np.log2(f0v / _SEMITONE_REF_HZ)
        pitch_median, pitch_sd = float(np.median(st)), float(np.std(st))
        r = np.clip(strength_all[f0_all > 0], 1e-6, 1 - 1e-6)
        hnr = float(np.mean(10.0 * np.log10(r / (1.0 - r))))  # Praat's HNR from the autocorrelation peak
        if cfg.voice_quality:
            pp = call([snd, pitch], "To PointProcess (cc)")
            j = call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
            s = call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
            jitter = float(j) * 100.0 if j == j else None  # NaN: too few periods
            shimmer = float(s) * 100.0 if s == s else None
    return ParalinguisticFeatures(
        duration_s=duration,
        sounding_s=sounding_s,
        span_s=span_s,
        phrases=len(phrases),
        pauses=len(gaps),
        mean_phrase_s=sounding_s / len(phrases),
        max_phrase_s=max(lengths),
        mean_pause_s=float(np.mean(gaps)) if gaps else 0.0,
        pauses_per_s=len(gaps) / span_s if span_s > 0 else 0.0,
        syllables=syllables,
        syllables_per_phrase=syllables / len(phrases),
        speech_rate=syllables / span_s if span_s > 0 else 0.0,
        articulation_rate=syllables / sounding_s if sounding_s > 0 else 0.0,
        level_dbfs=level,
        voiced_fraction=voiced_fraction,
        pitch_median_st=pitch_median,
        pitch_sd_st=pitch_sd,
        hnr_db=hnr,
        jitter_pct=jitter,
        shimmer_pct=shimmer,
        words=words,
        cost_ms=(time.thread_time() - t0) * 1000.0,
        noise_floor_dbfs=noise_floor,
    )


def _empty(duration: float, words: int | None, t0: float) -> ParalinguisticFeatures:
    """Nothing sounding: no phrases, nothing to measure (the tags then say nothing)."""
    return ParalinguisticFeatures(
        duration_s=duration, sounding_s=0.0, span_s=0.0, phrases=0, pauses=0, mean_phrase_s=0.0,
        max_phrase_s=0.0, mean_pause_s=0.0, pauses_per_s=0.0, syllables=0, syllables_per_phrase=0.0,
        speech_rate=0.0, articulation_rate=0.0, level_dbfs=None, voiced_fraction=0.0,
        pitch_median_st=None, pitch_sd_st=None, hnr_db=None, jitter_pct=None, shimmer_pct=None,
        words=words, cost_ms=(time.thread_time() - t0) * 1000.0,
    )  # fmt: skip
