"""ASR decode timings on this machine (``make bench`` may call :func:`run`).

Times the bundled Whisper model on Piper speech: partial decodes of 1 / 2 / 4 s windows
(greedy, no timestamps), the same with word timings (what a sliding window or the
speculative final asks for), and the final pass over a whole utterance. Reports min and
median of ``repeats`` runs after one warm-up decode, and the median CPU time per
decode (all threads), which a busy machine does not inflate.
"""

from __future__ import annotations

import statistics
import time

from evals.speech import synthesize_16k

TEXT = (
    "I have had a sharp pain in my chest since this morning, and it gets worse when I breathe in. "
    "My left arm feels numb."
)


def run(*, asr_model: str = "tiny.en", repeats: int = 5, verbose: bool = True) -> dict:
    from voice.asr import WhisperRecognizer
    from voice.provisioning import ModelSettings

    recognizer = WhisperRecognizer.from_settings(ModelSettings(asr_model=asr_model))
    audio = synthesize_16k(TEXT)
    recognizer.transcribe(audio[:16000], partial=True)  # warm-up: first call allocates

    def timed(clip, **kw) -> dict:
        runs, cpu = [], []
        for _ in range(repeats):
            before = time.process_time()
            runs.append(recognizer.transcribe(clip, **kw).duration_s * 1000)
            cpu.append((time.process_time() - before) * 1000)
        # CPU time does not grow when other work shares the cores: wall ~= cpu / threads idle.
        return {"min_ms": min(runs), "median_ms": statistics.median(runs), "cpu_ms": statistics.median(cpu)}

    results: dict = {"model": asr_model, "utterance_s": round(audio.size / 16000, 2)}
    for seconds in (1, 2, 4):
        clip = audio[: seconds * 16000]
        results[f"partial_{seconds}s"] = timed(clip, partial=True)
        results[f"partial_{seconds}s_words"] = timed(clip, partial=True, word_timestamps=True)
    results["final"] = timed(audio)
    results["speculative_final"] = timed(audio, word_timestamps=True)
    if verbose:
        print(f"{asr_model}: {results['utterance_s']} s utterance, {repeats} runs each (ms)")
        for key, value in results.items():
            if isinstance(value, dict):
                print(
                    f"  {key:22} min {value['min_ms']:7.0f}   median {value['median_ms']:7.0f}"
                    f"   cpu {value['cpu_ms']:7.0f}"
                )
    return results


if __name__ == "__main__":
    run()
