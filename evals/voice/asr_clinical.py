"""Red-flag words through ASR: do the words that fired an urgent rule survive recognition?

    python -m evals.voice.asr_clinical [--n 40] [--models tiny.en,base] [--windows fit,full]
                                 [--voices piper,espeak] [--bias off,rules] [--out DIR]

A deterministic sample of the dev vignettes (by default 30 emergencies whose text the rules
send to level 1-2, and 10 others) is spoken by two synthetic voices - the bundled Piper voice
(noise terms off) and espeak-ng, a formant synthesizer that sounds nothing like it - and each
utterance is decoded once as the pipeline's final pass would, for every combination of model,
encoder window and clinical vocabulary bias. Per condition it reports:

* ``kept_1_2``: emergencies for which ``clinical_rules.assess`` on the ASR text still gives
  level 1-2 (the clinical bottom line);
* ``term_recall``: of the content words in the evidence of the findings that made the text
  urgent, the share still present in the ASR text;
* ``raised``: non-emergencies that ASR turned into level 1-2;
* ``wer``: word error rate over all utterances (lower-cased, punctuation and fillers dropped);
* decode time per utterance (wall median / p95 and CPU median; noisy on a shared machine).

Synthesized audio is cached under ``var/asr_clinical/`` (same text and voice: same audio).
Writes ``bench-results/asr_clinical-<time>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from voice.audio import pcm16_to_float32, resample

RATE = 16000
ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / "var" / "asr_clinical"
OUT_DIR = ROOT / "bench-results"
VOICES = ("piper", "espeak")
_FILLERS = frozenset("um umm uh uhh er erm ah hmm mm oh".split())
_STOP = frozenset(
    """a an and the i im my me he hes she shes his her its it is was are be been to of in on at for
    with and or but so that this just like really very got have ive has had get some all about""".split()
)


# --- speech -------------------------------------------------------------------------------


def espeak_16k(text: str, *, voice: str = "en-us", wpm: int = 165) -> np.ndarray:
    """espeak-ng speech for ``text`` as 16 kHz float32 (deterministic)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            [exe, "-v", voice, "-s", str(wpm), "-w", tmp.name, text], check=True, capture_output=True
        )
        with wave.open(tmp.name, "rb") as w:
            rate, data = w.getframerate(), w.readframes(w.getnframes())
    return resample(pcm16_to_float32(data), rate, RATE)


def piper_16k(text: str) -> np.ndarray:
    from evals.speech import synthesize_16k

    return np.asarray(synthesize_16k(text), dtype=np.float32)


SYNTH: dict[str, Callable[[str], np.ndarray]] = {"piper": piper_16k, "espeak": espeak_16k}


def speech(text: str, voice: str, cache_dir: Path | None = CACHE_DIR) -> np.ndarray:
    """Cached synthesis: 300 ms lead-in, the speech, 500 ms tail, over a -65 dBFS noise floor."""
    key = hashlib.sha1(f"{voice}\0{text}".encode()).hexdigest()[:16]
    path = cache_dir / voice / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.exists():
        return np.load(path)
    raw = SYNTH[voice](text)
    audio = np.concatenate([np.zeros(RATE * 3 // 10, np.float32), raw, np.zeros(RATE // 2, np.float32)])
    rng = np.random.default_rng(int(key[:8], 16))
    audio = (audio + rng.normal(0, 10 ** (-65 / 20), audio.size)).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, audio)
    return audio


# --- scoring ------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    text = text.lower().replace("'", "")
    return [w for w in re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text) if w not in _FILLERS]


def wer_counts(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    r, h = words_of(ref), words_of(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[len(h)], len(r)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    expected: int
    emergency: bool  # the rules give this text level 1-2 (so ASR can lose it)
    terms: tuple[str, ...]  # content words of the urgent findings' evidence
    context: object  # clinical_rules.PatientContext


def _items(ruleset=None, ids: Sequence[str] | None = None) -> tuple[list[Item], list[Item]]:
    """(emergencies the rules catch on the text, other vignettes the rules do not send to 1-2)."""
    from clinical_rules import assess, load_ruleset
    from clinical_rules.evaluate import VIGNETTE_DIR, load_vignettes

    rs = ruleset or load_ruleset()
    emerg: list[Item] = []
    other: list[Item] = []
    for v in load_vignettes(VIGNETTE_DIR / "dev.yaml"):
        if ids is not None and v.id not in ids:
            continue
        a = assess([v.text], context=v.context, ruleset=rs)
        urgent = [f for f in a.reasons if f.level is not None and f.level <= 2 and f.evidence_text]
        if v.expected <= 2 and a.level is not None and a.level <= 2 and urgent:
            terms = sorted({w for f in urgent for w in words_of(f.evidence_text) if w not in _STOP})
            emerg.append(Item(v.id, v.text, v.expected, True, tuple(terms), v.context))
        elif v.expected >= 3 and (a.level is None or a.level >= 3):
            other.append(Item(v.id, v.text, v.expected, False, (), v.context))
    return emerg, other


def items_by_id(ids: Sequence[str], ruleset=None) -> list[Item]:
    """The named dev vignettes (in that order); one the rules do not place as above is refused."""
    emerg, other = _items(ruleset, ids)
    found = {it.id: it for it in emerg + other}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValueError(f"not usable for ASR scoring (absent, or the rules misjudge the text): {missing}")
    return [found[i] for i in ids]


def pinned_ids(value: str) -> list[str]:
    """``--ids``: comma-separated vignette ids, or an earlier JSON report (its ``items``), so
    runs on different days score the same utterances while dev.yaml grows."""
    if value.endswith(".json"):
        return list(json.loads(Path(value).read_text())["items"])
    return [v.strip() for v in value.split(",") if v.strip()]


def usable_items(ids: Sequence[str], ruleset=None) -> list[Item]:
    """Like :func:`items_by_id`, but drops (and says so) ids the current rules no longer place."""
    emerg, other = _items(ruleset, ids)
    found = {it.id: it for it in emerg + other}
    dropped = [i for i in ids if i not in found]
    if dropped:
        print(f"(not scored, the rules now misjudge their text or they are gone: {dropped})", file=sys.stderr)
    return [found[i] for i in ids if i in found]


def sample_items(n: int = 40, n_emergency: int = 30, ruleset=None) -> list[Item]:
    """Every k-th dev emergency the rules catch on the text, plus every k-th other vignette."""
    emerg, other = _items(ruleset)

    def every(items: list[Item], k: int) -> list[Item]:
        if k <= 0 or not items:
            return []
        if k >= len(items):
            return list(items)
        step = len(items) / k
        return [items[int(i * step)] for i in range(min(k, len(items)))]

    return every(emerg, n_emergency) + every(other, n - n_emergency)


@dataclass
class Condition:
    model: str
    window: str
    bias: str
    voice: str


@dataclass
class Result:
    condition: Condition
    n: int
    n_emergency: int
    kept_1_2: float
    term_recall: float
    raised: int
    wer: float
    decode_ms_median: float
    decode_ms_p95: float
    cpu_ms_median: float
    lost: list[dict]


def evaluate(
    items: Sequence[Item], transcribe: Callable[[np.ndarray], tuple[str, float, float]], cond: Condition,
    audio: dict[str, np.ndarray], *, ruleset=None, cache: Path | None = None,
) -> Result:  # fmt: skip
    """Decode every item (or reuse its decode from ``cache``, a JSON file per condition, written
    after each decode so an interrupted run resumes) and score the text with the rules."""
    from clinical_rules import assess, load_ruleset

    rs = ruleset or load_ruleset()
    done: dict[str, list] = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    errs = refs = 0
    kept = 0
    terms_total = terms_found = 0
    raised = 0
    wall: list[float] = []
    cpu: list[float] = []
    lost: list[dict] = []
    for it in items:
        key = hashlib.sha1(audio[it.id].tobytes()).hexdigest()[:16]
        if key not in done:
            done[key] = list(transcribe(audio[it.id]))
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps(done))
        text, wall_s, cpu_s = done[key]
        wall.append(wall_s * 1000)
        cpu.append(cpu_s * 1000)
        e, r = wer_counts(it.text, text)
        errs, refs = errs + e, refs + r
        level = assess([text], context=it.context, ruleset=rs).level
        urgent = level is not None and level <= 2
        if it.emergency:
            heard = set(words_of(text))
            found = [t for t in it.terms if t in heard]
            terms_total += len(it.terms)
            terms_found += len(found)
            kept += urgent
            if not urgent:
                lost.append({"id": it.id, "said": it.text, "heard": text, "level": level})
        elif urgent:
            raised += 1
    n_em = sum(it.emergency for it in items)
    wall_sorted = sorted(wall)
    return Result(
        condition=cond,
        n=len(items),
        n_emergency=n_em,
        kept_1_2=round(kept / n_em, 4) if n_em else 1.0,
        term_recall=round(terms_found / terms_total, 4) if terms_total else 1.0,
        raised=raised,
        wer=round(errs / refs, 4) if refs else 0.0,
        decode_ms_median=round(statistics.median(wall), 1),
        decode_ms_p95=round(wall_sorted[min(len(wall) - 1, int(0.95 * len(wall)))], 1),
        cpu_ms_median=round(statistics.median(cpu), 1),
        lost=lost,
    )


def _transcriber(recognizer) -> Callable[[np.ndarray], tuple[str, float, float]]:
    """The final pass as the pipeline runs it: (text, wall s, CPU s of this process)."""

    def run(audio: np.ndarray) -> tuple[str, float, float]:
        before = time.process_time()
        result = recognizer.transcribe(audio)
        return result.text, result.duration_s, time.process_time() - before

    return run


def run(
    *,
    n: int = 40,
    models: Sequence[str] = ("tiny.en", "base"),
    windows: Sequence[str] = ("fit", "full"),
    biases: Sequence[str] = ("off", "rules"),
    voices: Sequence[str] = VOICES,
    cpu_threads: int = 2,
    out_dir: Path | None = OUT_DIR,
    verbose: bool = True,
    ids: Sequence[str] | None = None,
) -> dict:
    from clinical_rules import load_ruleset
    from voice.asr import WhisperRecognizer, bias_prompt, resolve_vocabulary
    from voice.provisioning import ModelSettings, asr_model_dir

    rs = load_ruleset()  # once: the run is long, and the files may change while it runs
    if ids:
        items = usable_items(ids, rs)
    else:
        items = sample_items(n, n_emergency=min(n, round(n * 0.75)), ruleset=rs)
    audio = {v: {it.id: speech(it.text, v) for it in items} for v in voices}
    results: list[Result] = []
    for model in models:
        path = asr_model_dir(ModelSettings(asr_model=model))
        for bias in biases:
            for window in windows:
                # as PipelineConfig.asr_window would build it (the bias applies in both windows)
                rec = WhisperRecognizer(
                    path, cpu_threads=cpu_threads, window=window, vocabulary=resolve_vocabulary(bias)
                )
                rec.transcribe(np.zeros(RATE, np.float32) + 1e-3)  # warm-up allocations
                tag = hashlib.sha1(rec.bias_text.encode()).hexdigest()[:8]
                assert rec.bias_text == bias_prompt(resolve_vocabulary(bias))
                for voice in voices:
                    cond = Condition(model, window, bias, voice)
                    cache = (
                        CACHE_DIR / "decodes" / f"{model}-{window}-{bias}-{tag}-{voice}-{cpu_threads}.json"
                    )
                    r = evaluate(items, _transcriber(rec), cond, audio[voice], ruleset=rs, cache=cache)
                    results.append(r)
                    if verbose:
                        print(_row(r), flush=True)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "n": len(items),
        "n_emergency": sum(it.emergency for it in items),
        "items": [it.id for it in items],
        "ruleset_version": rs.version,
        "vocabulary": list(resolve_vocabulary("rules")),
        "results": [{**asdict(r), "condition": asdict(r.condition)} for r in results],
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"asr_clinical-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=1), encoding="utf-8")
        report["path"] = str(path)
    return report


HEADER = (
    f"{'model':8} {'window':6} {'bias':5} {'voice':6} {'kept 1-2':>9} {'terms':>6} {'raised':>6} "
    f"{'WER':>6} {'ms med':>7} {'ms p95':>7} {'cpu ms':>7}"
)


def _row(r: Result) -> str:
    c = r.condition
    return (
        f"{c.model:8} {c.window:6} {c.bias:5} {c.voice:6} {r.kept_1_2:>9.1%} {r.term_recall:>6.1%} "
        f"{r.raised:>6d} {r.wer:>6.1%} {r.decode_ms_median:>7.0f} {r.decode_ms_p95:>7.0f} {r.cpu_ms_median:>7.0f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m evals.voice.asr_clinical", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--n", type=int, default=40, help="utterances (3/4 emergencies)")
    ap.add_argument("--models", default="tiny.en,base")
    ap.add_argument("--windows", default="fit,full")
    ap.add_argument("--bias", default="off,rules", help="comma-separated: off, rules")
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument(
        "--ids", default=None, help="score these vignette ids (comma-separated, or a report .json)"
    )
    ap.add_argument("--lost", action="store_true", help="print what each condition lost")
    args = ap.parse_args(argv)
    split = lambda s: [p for p in s.split(",") if p]  # noqa: E731
    print(HEADER)
    report = run(
        n=args.n, models=split(args.models), windows=split(args.windows), biases=split(args.bias),
        voices=split(args.voices), out_dir=args.out, ids=pinned_ids(args.ids) if args.ids else None,
    )  # fmt: skip
    if args.lost:
        for r in report["results"]:
            c = r["condition"]
            for miss in r["lost"]:
                print(f"{c['model']}/{c['window']}/{c['bias']}/{c['voice']} {miss['id']}: {miss['heard']!r}")
    print(f"{report['n']} utterances ({report['n_emergency']} emergencies); JSON: {report.get('path')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
