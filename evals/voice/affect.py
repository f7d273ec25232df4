"""Affect and acoustic-sign tags on synthesized conditions: detection rate per tag, false tags on
fluent speech, and the feature extraction's cost per turn.

    python -m evals.voice.affect [--n 16] [--voices piper,espeak] [--channels clean|all|phone,gsm,...]
                                 [--out bench-results]

Fluent utterances are the dev vignettes' routine and self-care statements (9-20 words), spoken by
Piper (noise terms off) and espeak-ng. Each condition is made from the same words:

* ``breath``: the words in groups of two or three, each group spoken alone, joined by 450-700 ms
  pauses holding a soft breath noise (sox pink noise, faded): speech broken up by breaths;
* ``slow``: sox ``tempo 0.6`` (same pitch, 40% slower);
* ``slurred``: Piper: sox ``tempo 0.7 pitch -200 lowpass 1800`` (slower, lower, blurred
  consonants); espeak-ng: its own slow voice (``-s 80 -g 4``);
* ``quiet``: sox ``gain -30``; ``whisper``: espeak-ng's ``+whisper`` variant (espeak only);
* ``agitated``: sox ``pitch 500 tempo 1.1 gain 4`` (raised, faster, louder) on the words
  after "I'm really scared, please hurry." (the lexical cues).

Every condition turn follows two fluent turns of the same voice (other statements): the caller's
baseline. ``fluent`` is a third fluent turn: any tag on it is a false tag. Turns carry 300 ms of
lead-in and 500 ms of tail over a -65 dBFS noise floor, like the segmenter's turns. Cost is the
extraction's CPU time in the measuring thread (``time.thread_time``); the machine's other load
changes wall time, not that. Prints a table and writes ``affect_eval.json``.

``--channels``: every turn of a caller (baseline turns too) through a simulated phone line, codec,
room or background noise (evals/voice/channels.py), one table per channel. Synthetic speech
through simulated channels, not real callers.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from clinical_rules.affect import default_affect_rules
from evals.voice import channels as channels_mod
from voice.affect import AffectTracker
from voice.paralinguistics import extract

RATE = 16000
ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "tests" / "clinical_rules" / "vignettes" / "dev.yaml"
OUT_DIR = ROOT / "bench-results"
CONDITIONS: dict[str, str] = {  # condition -> the tag it should fire
    "breath": "breathless",
    "slow": "slow_slurred",
    "slurred": "slow_slurred",
    "quiet": "weak_voice",
    "whisper": "weak_voice",
    "agitated": "distress",
}
AGITATED_WORDS = "I'm really scared, please hurry."


# --- speech -------------------------------------------------------------------------------


def fluent_texts(n: int) -> list[str]:
    """Routine and self-care dev statements of 9-20 words, in file order."""
    data = yaml.safe_load(DEV.read_text())
    out = []
    for v in data["vignettes"]:
        tags = set(v.get("tags") or ())
        words = str(v["text"]).split()
        if tags & {"routine", "selfcare"} and 9 <= len(words) <= 20 and not tags & {"asr"}:
            out.append(str(v["text"]))
    return out[:n]


def sox(audio: np.ndarray, *effects: str) -> np.ndarray:
    """Run sox effects on float32 16 kHz mono audio."""
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    fmt = ["-t", "raw", "-r", str(RATE), "-e", "floating-point", "-b", "32", "-c", "1"]
    out = subprocess.run(
        [exe, *fmt, "-", *fmt, "-", *effects],
        input=np.ascontiguousarray(audio, dtype=np.float32).tobytes(),
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32).copy()


@functools.cache
def breath_noise(ms: int) -> np.ndarray:
    """A soft in-breath: pink noise, faded in and out, about -48 dBFS."""
    exe = shutil.which("sox")
    if exe is None:
        raise RuntimeError("sox is not installed (apt-get install sox)")
    s = ms / 1000
    out = subprocess.run(
        [exe, "-n", "-t", "raw", "-r", str(RATE), "-e", "floating-point", "-b", "32", "-c", "1", "-",
         "synth", f"{s:.3f}", "pinknoise", "vol", "0.012", "fade", "q", f"{s / 3:.3f}", f"{s:.3f}", f"{s / 3:.3f}"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, dtype=np.float32).copy()


def _trim(audio: np.ndarray, threshold: float = 0.004) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[max(0, loud[0] - 320) : loud[-1] + 320] if loud.size else audio[:0]


def _piper(text: str) -> np.ndarray:
    from evals.speech import synthesize_16k

    return np.asarray(synthesize_16k(text), dtype=np.float32)


def _espeak(text: str, *extra: str, voice: str = "en-us") -> np.ndarray:
    from voice.audio import pcm16_to_float32, resample

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run([exe, "-v", voice, *extra, "--stdout", text], capture_output=True, check=True).stdout
    # espeak-ng writes a 44-byte WAV header at 22,050 Hz
    return resample(pcm16_to_float32(wav[44:]), 22050, RATE)


SYNTH: dict[str, Callable[[str], np.ndarray]] = {"piper": _piper, "espeak": lambda t: _espeak(t)}


def turn(audio: np.ndarray, seed: int) -> np.ndarray:
    """As the segmenter hands a turn over: 300 ms lead-in, the speech, 500 ms tail, noise floor."""
    x = np.concatenate([np.zeros(RATE * 3 // 10, np.float32), audio, np.zeros(RATE // 2, np.float32)])
    rng = np.random.default_rng(seed)
    return (x + rng.normal(0, 10 ** (-65 / 20), x.size)).astype(np.float32)


def breath_groups(text: str) -> list[str]:
    words = text.replace(",", "").replace(".", "").split()
    groups, i, k = [], 0, 0
    while i < len(words):
        size = 2 if k % 2 == 0 else 3
        groups.append(" ".join(words[i : i + size]))
        i, k = i + size, k + 1
    return groups


def condition_audio(condition: str, text: str, voice: str) -> tuple[np.ndarray, str] | None:
    """(speech, the words said) for ``condition``, or None where the voice cannot make it."""
    synth = SYNTH[voice]
    if condition == "fluent":
        return _trim(synth(text)), text
    if condition == "breath":
        parts = []
        for j, group in enumerate(breath_groups(text)):
            if j:
                pause = (450, 550, 700, 600)[j % 4]
                b = breath_noise(pause // 2)
                lead = np.zeros(RATE * (pause - pause // 2) // 2000, np.float32)
                parts += [lead, b, np.zeros(RATE * pause // 1000 - lead.size - b.size, np.float32)]
            parts.append(_trim(synth(group)))
        return np.concatenate(parts), text
    if condition == "slow":
        return sox(_trim(synth(text)), "tempo", "0.6"), text
    if condition == "slurred":
        if voice == "espeak":
            return _trim(_espeak(text, "-s", "80", "-g", "4")), text
        return sox(_trim(synth(text)), "tempo", "0.7", "pitch", "-200", "lowpass", "1800"), text
    if condition == "quiet":
        return sox(_trim(synth(text)), "gain", "-30"), text
    if condition == "whisper":
        if voice != "espeak":
            return None
        return _trim(_espeak(text, voice="en-us+whisper")), text
    if condition == "agitated":
        said = f"{AGITATED_WORDS} {text}"
        return sox(_trim(synth(said)), "pitch", "500", "tempo", "1.1", "gain", "4"), said
    raise ValueError(condition)


# --- the run ------------------------------------------------------------------------------


def run(
    n: int = 16,
    voices: Sequence[str] = ("piper", "espeak"),
    log: Callable[[str], None] = print,
    channels: Sequence[str] = ("clean",),
) -> dict:
    rules = default_affect_rules()
    texts = fluent_texts(n)
    if len(texts) < 3:
        raise RuntimeError("need at least 3 fluent dev statements")
    conditions = ["fluent", *CONDITIONS]
    results: list[dict] = []
    costs: list[float] = []
    audio_s: list[float] = []
    audio_cache: dict[tuple[str, str, str, int], tuple] = {}
    feats_cache: dict[tuple[str, str, str, str], tuple] = {}
    # The caller's usual level on each voice (the noise channel's background is set under it).
    ref: dict[str, float] = {}

    def made(cond: str, text: str, voice: str, seed: int):
        key = (cond, text, voice, seed)
        if key not in audio_cache:
            m = condition_audio(cond, text, voice)
            audio_cache[key] = (None, "") if m is None else (turn(m[0], seed), m[1])
        return audio_cache[key]

    def measure(cond: str, text: str, voice: str, seed: int, channel: str):
        key = (cond, text, voice, channel)
        if key not in feats_cache:
            audio, said = made(cond, text, voice, seed)
            if audio is None:
                feats_cache[key] = (None, "")
            else:
                if voice not in ref:
                    ref[voice] = float(
                        np.median(
                            [
                                channels_mod.active_level_dbfs(made("fluent", t, voice, 100)[0])
                                for t in texts[:8]
                            ]
                        )
                    )
                heard = channels_mod.apply(audio, channel, seed=seed * 7 + len(cond), ref_dbfs=ref[voice])
                f = extract(heard, RATE, words=len(said.split()))
                costs.append(f.cost_ms)
                audio_s.append(f.duration_s)
                feats_cache[key] = (f, said)
        return feats_cache[key]

    for voice in voices:
        for channel in channels:
            for i, text in enumerate(texts):
                base = [texts[(i + 1) % len(texts)], texts[(i + 2) % len(texts)]]
                for cond in conditions:
                    f, said = measure(cond, text, voice, i, channel)
                    if f is None:
                        continue
                    tracker = AffectTracker(rules)
                    for j, b in enumerate(base):
                        bf, bsaid = measure("fluent", b, voice, 100 + j, channel)
                        tracker.observe(j, bf, bsaid)
                    reading = tracker.observe(9, f, said)
                    results.append(
                        {
                            "voice": voice,
                            "channel": channel,
                            "condition": cond,
                            "text": text,
                            "tags": [t.name for t in reading.tags],
                            "grades": {t.name: t.grade for t in reading.tags},
                            "attention": reading.attention,
                            "features": f.to_dict(),
                        }
                    )
            log(f"  {voice} / {channel}: {len(texts)} statements x {len(conditions)} conditions")
    summary = summarise([r for r in results if r["channel"] == channels[0]], costs, audio_s)
    summary["channel"] = channels[0]
    summary["channels"] = {
        ch: summarise([r for r in results if r["channel"] == ch], costs, audio_s)["conditions"]
        for ch in channels
    }
    summary["noise_ref_dbfs"] = {v: round(x, 1) for v, x in ref.items()}
    summary["rules_version"] = rules.version
    summary["thresholds"] = {name: dict(t.params) for name, t in rules.tags.items()}
    return {"summary": summary, "turns": results}


def summarise(results: list[dict], costs: list[float], audio_s: list[float]) -> dict:
    per: dict[str, dict] = {}
    for cond in ["fluent", *CONDITIONS]:
        rows = [r for r in results if r["condition"] == cond]
        if not rows:
            continue
        target = CONDITIONS.get(cond)
        entry = {"turns": len(rows), "target": target}
        if target is not None:
            entry["detected"] = sum(target in r["tags"] for r in rows)
            entry["detection_rate"] = entry["detected"] / len(rows)
            others = [t for r in rows for t in r["tags"] if t != target]
            entry["other_tags"] = {t: others.count(t) for t in sorted(set(others))}
        else:
            entry["false_tagged"] = sum(bool(r["tags"]) for r in rows)
            entry["false_tag_rate"] = entry["false_tagged"] / len(rows)
            tags = [t for r in rows for t in r["tags"]]
            entry["false_tags"] = {t: tags.count(t) for t in sorted(set(tags))}
            entry["false_attention"] = sum(r["attention"] for r in rows)
        for voice in sorted({r["voice"] for r in rows}):
            vr = [r for r in rows if r["voice"] == voice]
            hit = sum((target in r["tags"]) if target else (not r["tags"]) for r in vr)
            entry[f"{voice}_rate"] = hit / len(vr)
        per[cond] = entry
    c = np.array(costs) if costs else np.zeros(1)
    per_s = np.array(costs) / np.maximum(np.array(audio_s), 1e-3) if costs else np.zeros(1)
    return {
        "conditions": per,
        "cost_ms": {
            "turns": len(costs),
            "p50": float(np.percentile(c, 50)),
            "p95": float(np.percentile(c, 95)),
            "max": float(c.max()),
            "per_audio_s_p50": float(np.percentile(per_s, 50)),
            "turn_s_p50": float(np.percentile(audio_s, 50)) if audio_s else 0.0,
            "turn_s_max": float(max(audio_s)) if audio_s else 0.0,
        },
    }


def print_table(summary: dict, out=sys.stdout) -> None:
    for ch, conds in summary.get(
        "channels", {summary.get("channel", "clean"): summary["conditions"]}
    ).items():
        print(f"channel {ch}", file=out)
        _print_conditions(conds, out)
    c = summary["cost_ms"]
    print(
        f"feature extraction CPU per turn: p50 {c['p50']:.1f} ms, p95 {c['p95']:.1f} ms, max {c['max']:.1f} ms "
        f"({c['turns']} turns, median turn {c['turn_s_p50']:.1f} s, longest {c['turn_s_max']:.1f} s; "
        f"{c['per_audio_s_p50']:.1f} ms per second of audio)",
        file=out,
    )
    print("(rate: fluent = turns with no tag; a condition = turns with its tag)", file=out)


def _print_conditions(conditions: dict, out) -> None:
    print(
        f"{'condition':<10} {'tag':<13} {'turns':>5} {'rate':>7} {'piper':>7} {'espeak':>7}  other / false tags",
        file=out,
    )
    for cond, e in conditions.items():
        rate = e.get("detection_rate", 1.0 - e.get("false_tag_rate", 0.0))
        label = e["target"] or "(none)"
        extra = e.get("other_tags") if e["target"] else e.get("false_tags")
        pv = f"{e['piper_rate']:.0%}" if "piper_rate" in e else "-"
        ev = f"{e['espeak_rate']:.0%}" if "espeak_rate" in e else "-"
        print(f"{cond:<10} {label:<13} {e['turns']:>5} {rate:>7.0%} {pv:>7} {ev:>7}  {extra or ''}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=16, help="fluent dev statements per voice")
    ap.add_argument("--voices", default="piper,espeak")
    ap.add_argument(
        "--channels",
        default="clean",
        help=f"comma-separated, from {','.join(channels_mod.CHANNELS)} (evals/voice/channels.py); 'all' for every one",
    )
    ap.add_argument("--out", default=str(OUT_DIR))
    args = ap.parse_args(argv)
    chans = (
        list(channels_mod.CHANNELS) if args.channels == "all" else [c for c in args.channels.split(",") if c]
    )
    for c in chans:
        if c not in channels_mod.CHANNELS:
            ap.error(f"unknown channel {c!r}")
    t0 = time.perf_counter()
    result = run(args.n, [v for v in args.voices.split(",") if v], channels=chans)
    print_table(result["summary"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "affect_eval.json"
    result["summary"]["wall_s"] = round(time.perf_counter() - t0, 1)
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path} ({result['summary']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
