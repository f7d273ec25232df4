"""ASR with the real bundled tiny.en on Piper speech (one model per session, few decodes)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from voice.asr import (
    LocalAgreement,
    StreamingConfig,
    StreamingTranscriber,
    WhisperRecognizer,
    trim_trailing_repeat,
)
from voice.endpointing import words_of

pytestmark = pytest.mark.models

CHEST = "I have had a sharp pain in my chest since this morning."
LONG = (
    "My husband has had a fever since Monday. This morning he became confused "
    "and now he is very short of breath when he walks to the kitchen."
)


def is_prefix(a: list[str], b: list[str]) -> bool:
    return b[: len(a)] == a


class GatedRecognizer:
    """Test double around the REAL recognizer: each decode waits for the test to open the
    gate, so 'the previous decode is still running' is a state the test controls."""

    sample_rate = 16000
    supports_partial = True

    def __init__(self, inner: WhisperRecognizer) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.started = threading.Event()
        self.threads: list[str] = []

    def transcribe(self, audio, *, prompt=None, **kwargs):
        self.threads.append(threading.current_thread().name)
        self.started.set()
        assert self.gate.wait(60), "test never opened the gate"
        return self.inner.transcribe(audio, prompt=prompt, **kwargs)


def test_final_transcript_matches_the_words(tiny_recognizer, speech16k):
    result = tiny_recognizer.transcribe(speech16k(CHEST))
    assert words_of(result.text) == words_of(CHEST)
    assert -0.5 < result.avg_logprob <= 0.0
    assert 0.0 <= result.no_speech_prob < 0.3
    assert result.duration_s > 0


# Short answers and backchannels are where a fitted window used to loop ("Okay okay okay").
FITTED_SET = (CHEST, "Okay.", "Yes.", "About three days ago.", "Wait, I have a question first.", LONG)


def test_fitted_window_matches_the_full_window(tiny_recognizer, speech16k):
    assert tiny_recognizer.window == "fit"
    full = WhisperRecognizer(tiny_recognizer.model_dir, window="full", cpu_threads=2)
    for text in FITTED_SET:
        audio = speech16k(text)
        fitted = tiny_recognizer.transcribe(audio)
        assert words_of(fitted.text) == words_of(full.transcribe(audio).text) == words_of(text), text
        assert fitted.avg_logprob > -1.0 and fitted.no_speech_prob < 0.5, (text, fitted)


def test_fitted_window_word_items_carry_their_punctuation(tiny_recognizer, speech16k):
    result = tiny_recognizer.transcribe(speech16k(CHEST), word_timestamps=True)
    assert [w for w, _, _ in result.words][-1] == "morning."
    assert len(result.word_probs) == len(result.words)
    # the endpoint policy reads the last word's probability: a clear final word is sure
    assert result.word_probs[-1] > 0.9


@pytest.mark.parametrize(
    ("words", "kept"),
    [
        (["Okay", ".", " Okay", ".", " Okay"], 2),
        (["Yeah", " yeah", " yeah", " yeah"], 1),
        ("I cut my finger while cooking . I cut my finger".split(), 7),
        ("help me please help".split(), 4),  # a one-word echo of the start is real speech
        ("I think , I think my daughter has a fever".split(), 10),  # a repeat mid-sentence stays
        ([], 0),
    ],
)
def test_trim_trailing_repeat(words, kept):
    assert trim_trailing_repeat(words) == kept


def test_silence_and_noise_look_like_no_speech(tiny_recognizer):
    noise = np.random.default_rng(0).normal(0, 10 ** (-60 / 20), 16000 * 2).astype(np.float32)
    result = tiny_recognizer.transcribe(noise)
    assert result.no_speech_prob > 0.5 or not words_of(result.text)
    tiny = tiny_recognizer.transcribe(np.zeros(800, np.float32))  # 50 ms: not worth a decode
    assert tiny.text == "" and tiny.no_speech_prob == 1.0


def test_partial_mode_returns_word_timings_and_probabilities(tiny_recognizer, speech16k):
    audio = speech16k(CHEST)
    result = tiny_recognizer.transcribe(audio, partial=True, word_timestamps=True)
    assert [w for w, _, _ in result.words] and len(result.word_probs) == len(result.words)
    starts = [s for _, s, _ in result.words]
    assert starts == sorted(starts) and result.words[-1][2] <= audio.size / 16000 + 0.1
    assert all(0.0 <= p <= 1.0 for p in result.word_probs)
    assert "Thank you" not in result.text  # trailing-silence hallucination segments are dropped


async def _stream(transcriber: StreamingTranscriber, audio: np.ndarray, *, wait_each: bool) -> None:
    for i in range(0, audio.size, 320):  # 20 ms frames, as the segmenter delivers them
        transcriber.push(audio[i : i + 320])
        if wait_each:
            await transcriber.wait_idle()  # a CPU that keeps up: every due partial runs


async def test_streaming_partials_are_monotonic_and_final_is_right(tiny_recognizer, speech16k):
    audio = speech16k(CHEST)
    partials = []
    executor = ThreadPoolExecutor(1)
    tr = StreamingTranscriber(
        tiny_recognizer,
        turn_id=7,
        executor=executor,
        config=StreamingConfig(partial_interval_ms=500, min_audio_ms=500),
        on_partial=partials.append,
    )
    await _stream(tr, audio, wait_each=True)
    await tr.wait_idle()
    assert len(partials) >= 3, "partials must arrive while the turn is still being spoken"
    stables = [words_of(p.stable_text) for p in partials]
    for earlier, later in zip(stables, stables[1:], strict=False):
        assert is_prefix(earlier, later), "stable words never change"
    for p in partials:
        assert p.turn_id == 7 and words_of(p.text)[: len(words_of(p.stable_text))] == words_of(p.stable_text)
        assert p.avg_logprob <= 0 and 0 <= p.no_speech_prob <= 1
    assert stables[-1], "something became stable"
    assert is_prefix(stables[-1], words_of(CHEST))
    assert tr.stats.partial_decodes >= 3 and tr.stats.skipped == 0

    final = await tr.final(speech_start=1.0, speech_end=3.5)
    assert words_of(final.text) == words_of(CHEST)
    assert (final.turn_id, final.speech_start, final.speech_end) == (7, 1.0, 3.5)
    assert not tr.stats.final_reused
    executor.shutdown()


async def test_long_turn_slides_the_window_and_stays_monotonic(tiny_recognizer, speech16k):
    audio = speech16k(LONG)
    assert audio.size / 16000 > 6
    partials = []
    tr = StreamingTranscriber(
        tiny_recognizer,
        turn_id=1,
        executor=ThreadPoolExecutor(1),
        config=StreamingConfig(partial_interval_ms=700, min_audio_ms=700, max_window_s=3.0),
        on_partial=partials.append,
    )
    await _stream(tr, audio, wait_each=True)
    await tr.wait_idle()
    assert tr._window_start > 0, "the decode window moved past the committed words"
    stables = [words_of(p.stable_text) for p in partials]
    for earlier, later in zip(stables, stables[1:], strict=False):
        assert is_prefix(earlier, later)
    heard = set(words_of(partials[-1].text))
    assert len(heard & set(words_of(LONG))) >= 0.8 * len(set(words_of(LONG)))


async def test_skips_partials_while_the_previous_decode_runs(tiny_recognizer, speech16k):
    gated = GatedRecognizer(tiny_recognizer)
    audio = speech16k(LONG)
    partials = []
    tr = StreamingTranscriber(
        gated,
        turn_id=1,
        executor=ThreadPoolExecutor(1, thread_name_prefix="asr-test"),
        config=StreamingConfig(partial_interval_ms=400, min_audio_ms=400),
        on_partial=partials.append,
    )
    tr.push(audio[:6400])  # 400 ms: the first partial is due and starts
    await asyncio.get_running_loop().run_in_executor(None, gated.started.wait, 30)
    tr.push(audio[6400:48000])  # up to 3.0 s while it is blocked: due at 0.8, 1.2 ... 2.8 s
    assert tr.stats.skipped == 6 and tr.stats.partial_decodes == 0
    gated.gate.set()
    await tr.wait_idle()
    assert tr.stats.partial_decodes == 1 and len(partials) == 1
    assert all(name.startswith("asr-test") for name in gated.threads), "inference stays off the loop"
    tr.push(audio[48000:54400])  # the next due partial runs: nothing in flight any more
    assert tr._inflight is not None and not tr._inflight.done()
    await tr.wait_idle()
    assert tr.stats.partial_decodes == 2 and tr.stats.skipped == 6


async def test_catch_up_starts_the_due_partial_as_soon_as_the_previous_is_back(tiny_recognizer, speech16k):
    """Bursts over the agent (``catch_up``): a partial that fell due while the previous decode
    ran is not skipped to the next interval boundary; the first push after the decode is back
    starts it, on all the audio so far."""
    gated = GatedRecognizer(tiny_recognizer)
    audio = speech16k(CHEST)
    tr = StreamingTranscriber(
        gated,
        turn_id=1,
        executor=ThreadPoolExecutor(1),
        config=StreamingConfig(partial_interval_ms=100, min_audio_ms=400, catch_up=True),
    )
    tr.push(audio[:6400])  # 400 ms: the first partial starts
    await asyncio.get_running_loop().run_in_executor(None, gated.started.wait, 30)
    tr.push(audio[6400:8960])  # 560 ms while it runs: the next one fell due at 500 ms
    assert tr.stats.skipped == 0 and tr._next_due == 8000
    gated.gate.set()
    await tr.wait_idle()
    assert tr.stats.partial_decodes == 1
    tr.push(audio[8960:9280])  # one 20 ms frame: without catch_up nothing is due before 600 ms
    assert tr._inflight is not None and not tr._inflight.done()
    assert tr._next_due == 9280 + 1600
    await tr.wait_idle()
    assert tr.stats.partial_decodes == 2 and tr.stats.skipped == 0


async def test_saturated_shared_executor_counts_as_behind(tiny_recognizer, speech16k):
    """Another session's work holds the only worker: our decode is queued, later partials skip."""
    shared = ThreadPoolExecutor(1)
    release = threading.Event()
    blocker = shared.submit(release.wait, 60)
    tr = StreamingTranscriber(tiny_recognizer, turn_id=1, executor=shared, config=StreamingConfig())
    audio = speech16k(LONG)
    await _stream(tr, audio[:32000], wait_each=False)
    assert tr.stats.skipped >= 3 and tr.stats.partial_decodes == 0
    release.set()
    await asyncio.wrap_future(blocker)
    await tr.wait_idle()
    assert tr.stats.partial_decodes == 1 and tr.latest is not None
    shared.shutdown()


async def test_final_reuses_the_speculative_decode_when_no_audio_followed(tiny_recognizer, speech16k):
    audio = speech16k(CHEST)
    tr = StreamingTranscriber(
        tiny_recognizer,
        turn_id=3,
        executor=ThreadPoolExecutor(1),
        config=StreamingConfig(min_audio_ms=60_000),
    )
    tr.push(audio)
    speculative = await tr.speculative_final()
    assert words_of(speculative.text) == words_of(CHEST) and speculative.word_probs
    final = await tr.final(speech_start=0.0, speech_end=audio.size / 16000)
    assert tr.stats.final_reused and final.text == speculative.text

    # Audio after the speculative decode (the patient went on): decode again.
    tr2 = StreamingTranscriber(
        tiny_recognizer,
        turn_id=4,
        executor=ThreadPoolExecutor(1),
        config=StreamingConfig(min_audio_ms=60_000),
    )
    half = audio.size // 2
    tr2.push(audio[:half])
    await tr2.speculative_final()
    tr2.push(audio[half:])
    final2 = await tr2.final(speech_start=0.0, speech_end=audio.size / 16000)
    assert not tr2.stats.final_reused and words_of(final2.text) == words_of(CHEST)


# --- local agreement without a model --------------------------------------------------


def test_local_agreement_commits_what_two_hypotheses_share():
    la = LocalAgreement()
    assert la.update("I have a pain".split()) == []
    assert la.update("I have a pain in my".split()) == "I have a pain".split()
    assert la.update("I have a pain in mind.".split()) == ["in"]
    assert la.stable_text == "I have a pain in" and la.text == "I have a pain in mind."
    # A later hypothesis that disagrees with committed words cannot change them.
    la.update("I had a pain in my chest".split())
    assert la.stable_text == "I have a pain in"
    assert la.text == "I have a pain in my chest"
    # Punctuation and case do not block agreement.
    assert la.update("I had a pain in my chest.".split()) == ["my", "chest."]


def test_local_agreement_after_a_window_slide():
    la = LocalAgreement()
    la.update("one two three four".split())
    la.update("one two three four five".split())
    assert la.committed == "one two three four".split()
    la.slide(["five"])  # new window starts after "four"; hypotheses are window-relative now
    assert la.update("five six".split()) == ["five"]
    assert la.text == "one two three four five six"
