"""Is a transcript speech? Whisper "transcribes" noise, music and babble into fluent text
("I'm gonna go to the end of the end..."); such text must not become a patient turn or reach
the rules. The checks use what the decode reports (no-speech probability, average token
log-probability) and the text itself (compression ratio, repeated phrases, Whisper's known
hallucinations), the same signals Whisper's own decoding fallbacks use.

A pure function over the numbers: no model, no I/O (tested in tests/voice/test_speech_filter.py).
``judge_partial`` is stricter: a partial that is dropped costs nothing (the next partial or the
final brings the words), a partial invented from noise reaches captions and the rules at once.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# Whisper's own "silence" rule: the no-speech token is likely AND the words are unsure.
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0
# Words this unsure are guesses whatever the no-speech token says (real speech, even
# accented or on a poor line, decodes well above this; noise decodes around -1.5 and below).
MIN_AVG_LOGPROB = -1.3
# Whisper's compression-ratio threshold: text that zlib shrinks this much is a loop.
MAX_COMPRESSION_RATIO = 2.4
MIN_CHARS_FOR_RATIO = 24  # short text does not compress either way
# The same 1-4 words said more than this many times in a row is a decoding loop...
MAX_REPEATS = 3
# ... but a distressed caller repeats too ("help, help, help, help"; "I can't breathe" four
# times): a loop or a highly compressible text is refused only when the decode is unsure of it,
# or when it goes on longer than a person would.
UNSURE_LOGPROB = -0.6
UNSURE_NO_SPEECH = 0.3
ABSURD_REPEATS = 8
ABSURD_COMPRESSION_RATIO = 4.0

# Partials: real speech decodes at -0.1...-0.7 once a word or two is in (a lone first word can
# be lower: it is dropped at no cost); noise's fluent inventions sit at -0.9...-3.
PARTIAL_MIN_AVG_LOGPROB = -1.0
# ... and its loops repeat phrases longer than MAX_REPEATS counts ("I'm not going to be a bad
# guy, I'm not going to be a bad guy, ..."): in a partial the decode is unsure of, a phrase of
# this many words or more said twice back to back is a loop.
PARTIAL_LOOP_WORDS = 4

# Whole transcripts Whisper produces from silence and noise (its subtitle training data).
# Never a triage answer, whatever the confidence.
_HALLUCINATIONS = {
    "thanks for watching",
    "thank you for watching",
    "thanks for watching and see you next time",
    "please subscribe",
    "like and subscribe",
    "subtitles by the amara org community",
    "subtitles by the amaraorg community",
    "transcribed by",
    "transcription by castingwords",
    "see you in the next video",
}
# Short transcripts that are real answers too ("Thank you.") but also Whisper's favourite
# output for a burst of noise: refused only when the decode itself is unsure.
_AMBIGUOUS = {"you", "thank you", "thank you very much", "bye", "so", "the", "i", "oh"}
_AMBIGUOUS_NO_SPEECH = 0.3
_AMBIGUOUS_LOGPROB = -0.8

_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True, slots=True)
class Verdict:
    speech: bool
    reason: str = ""  # why not: no_speech, low_confidence, repetition, hallucination
    value: float = 0.0  # the measure that decided (probability, log-prob, ratio, repeats)


SPEECH = Verdict(True)


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def longest_repeat(words: list[str], max_len: int = 4) -> int:
    """The most times any run of 1..max_len words repeats back to back."""
    best = 1
    for size in range(1, max_len + 1):
        for start in range(len(words) - size):
            count = 1
            i = start + size
            while words[i : i + size] == words[start : start + size]:
                count += 1
                i += size
            best = max(best, count)
    return best


def judge(text: str, avg_logprob: float, no_speech_prob: float) -> Verdict:
    """Whether a final transcript is speech (empty text is for the caller: nothing to judge)."""
    words = _WORD.findall(text.lower())
    if not words:
        return SPEECH
    if no_speech_prob > NO_SPEECH_PROB and avg_logprob < NO_SPEECH_LOGPROB:
        return Verdict(False, "no_speech", round(no_speech_prob, 3))
    if avg_logprob < MIN_AVG_LOGPROB:
        return Verdict(False, "low_confidence", round(avg_logprob, 3))
    phrase = " ".join(words)
    if phrase in _HALLUCINATIONS:
        return Verdict(False, "hallucination", round(no_speech_prob, 3))
    if phrase in _AMBIGUOUS and (no_speech_prob > _AMBIGUOUS_NO_SPEECH or avg_logprob < _AMBIGUOUS_LOGPROB):
        return Verdict(False, "hallucination", round(no_speech_prob, 3))
    unsure = avg_logprob < UNSURE_LOGPROB or no_speech_prob > UNSURE_NO_SPEECH
    if len(text) >= MIN_CHARS_FOR_RATIO:
        ratio = compression_ratio(text)
        if ratio > (MAX_COMPRESSION_RATIO if unsure else ABSURD_COMPRESSION_RATIO):
            return Verdict(False, "repetition", round(ratio, 2))
    repeats = longest_repeat(words)
    if repeats > MAX_REPEATS and (unsure or repeats >= ABSURD_REPEATS):
        return Verdict(False, "repetition", float(repeats))
    return SPEECH


def judge_partial(text: str, avg_logprob: float, no_speech_prob: float) -> Verdict:
    """Whether a partial transcript is speech: ``judge`` and, since dropping a partial loses
    nothing, a higher confidence bar and longer loops (see PARTIAL_MIN_AVG_LOGPROB)."""
    verdict = judge(text, avg_logprob, no_speech_prob)
    words = _WORD.findall(text.lower())
    if not verdict.speech or not words:
        return verdict
    if avg_logprob < PARTIAL_MIN_AVG_LOGPROB:
        return Verdict(False, "low_confidence", round(avg_logprob, 3))
    if avg_logprob < UNSURE_LOGPROB or no_speech_prob > UNSURE_NO_SPEECH:
        for size in range(PARTIAL_LOOP_WORDS, len(words) // 2 + 1):
            if any(
                words[i : i + size] == words[i + size : i + 2 * size]
                for i in range(len(words) - 2 * size + 1)
            ):
                return Verdict(False, "repetition", float(size))
    return SPEECH
