"""The non-speech filter (voice/speech_filter.py): the rules on Whisper's own numbers, then
the real tiny.en on noise and babble (no words survive) and on speech (every word survives),
then a real VoiceSession: noise makes no turn and counts an acoustic anomaly, speech after it
is still a turn."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voice import speech_filter as sf

# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "logprob", "no_speech", "reason"),
    [
        ("I'm gonna go to the end of the end of the end of the end of the end.", -0.7, 0.1, "repetition"),
        ("the the the the the", -0.3, 0.4, "repetition"),
        ("I'm going to go to the " + "end of the " * 9 + "end.", -0.2, 0.05, "repetition"),  # confident loop
        ("Thanks for watching!", -0.2, 0.1, "hallucination"),
        ("Subtitles by the Amara.org community", -0.3, 0.2, "hallucination"),
        ("You", -0.9, 0.5, "hallucination"),
        ("Thank you.", -0.5, 0.45, "hallucination"),
        ("I think it's a good one.", -1.1, 0.8, "no_speech"),
        ("so we can be in the water", -1.6, 0.1, "low_confidence"),
    ],
)
def test_invented_words_are_not_speech(text, logprob, no_speech, reason):
    verdict = sf.judge(text, logprob, no_speech)
    assert not verdict.speech and verdict.reason == reason


@pytest.mark.parametrize(
    ("text", "logprob", "no_speech"),
    [
        ("I have crushing chest pain and I can't breathe.", -0.25, 0.01),
        ("Thank you.", -0.2, 0.02),  # a real answer, said clearly
        ("Yes.", -0.6, 0.2),
        ("No, no, no.", -0.4, 0.1),
        ("Help, help me, please help.", -0.5, 0.1),
        # a distressed caller repeats: confident repeats are speech
        ("Help, help, help, help!", -0.3, 0.05),
        ("I can't breathe, I can't breathe, I can't breathe, I can't breathe.", -0.3, 0.05),
        ("My son is nine and he has been wheezing at night since his cold.", -0.9, 0.3),
        ("", -10.0, 1.0),  # nothing to judge: the caller's "no words" path handles it
    ],
)
def test_speech_is_speech(text, logprob, no_speech):
    assert sf.judge(text, logprob, no_speech).speech


def test_repeats_and_ratio():
    assert sf.longest_repeat("of the end of the end of the end".split()) == 3
    assert sf.longest_repeat("my chest hurts".split()) == 1
    assert sf.compression_ratio("ab" * 40) > sf.MAX_COMPRESSION_RATIO
    assert sf.compression_ratio("I have had a headache since this morning.") < 1.5


# --- the real recognizer ---------------------------------------------------------------------


def noise(seconds: float, seed: int, level: float = 0.3) -> np.ndarray:
    return (
        (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * level)
        .clip(-1, 1)
        .astype(np.float32)
    )


def babble(speech16k, seconds: float = 3.0) -> np.ndarray:
    """Several voices at once, each reversed: speech's spectrum and rhythm, no words."""
    texts = (
        "I have had a headache since this morning.",
        "My son is nine and he has asthma.",
        "It started twenty minutes ago and I feel sick.",
        "She fell down the stairs and hurt her wrist.",
    )
    n = int(16000 * seconds)
    mix = np.zeros(n, dtype=np.float32)
    for i, text in enumerate(texts):
        voice = speech16k(text)[::-1]
        voice = np.roll(np.pad(voice, (0, max(0, n - voice.size)))[:n], i * 3000)
        mix += voice
    return (mix / np.abs(mix).max() * 0.6).astype(np.float32)


@pytest.mark.models
def test_noise_and_babble_through_tiny_en_are_not_speech(tiny_recognizer, speech16k):
    judged = []
    samples = [noise(2.0, seed) for seed in range(4)] + [noise(2.0, 9, level=0.05), babble(speech16k)]
    for audio in samples:
        result = tiny_recognizer.transcribe(audio)
        verdict = sf.judge(result.text, result.avg_logprob, result.no_speech_prob)
        judged.append((result.text, round(result.avg_logprob, 2), round(result.no_speech_prob, 2), verdict))
    invented = [j for j in judged if sf._WORD.findall(j[0].lower()) and j[3].speech]
    assert invented == [], f"words that passed as speech: {invented}"


@pytest.mark.models
def test_speech_through_tiny_en_is_speech(tiny_recognizer, speech16k):
    for text in (
        "I have crushing chest pain and I can't breathe.",
        "Yes.",
        "No.",
        "Thank you.",
        "My son is nine and he has been wheezing at night since his cold.",
        "She fell down the stairs and hurt her wrist.",
    ):
        result = tiny_recognizer.transcribe(speech16k(text))
        verdict = sf.judge(result.text, result.avg_logprob, result.no_speech_prob)
        assert verdict.speech, (text, result.text, result.avg_logprob, result.no_speech_prob, verdict)


# --- a real voice session --------------------------------------------------------------------


@pytest.mark.models
@pytest.mark.timeout(300)
async def test_noise_makes_no_turn_and_speech_after_it_still_does(speech16k):
    from clinical_rules import PatientContext, TriageInterview
    from tests.speech import speech_pcm16k
    from voice.config import PipelineConfig
    from voice.events import AcousticAnomaly, AgentReplyFinished, FinalTranscript
    from voice.pipeline import VoiceSession
    from voice.runtime import VoiceRuntime
    from voice.simulate import SimulatedClient, stream_pcm

    speech = speech_pcm16k("I have had a headache since this morning.")
    quiet = np.zeros(32000, dtype=np.float32)
    bursts = [noise(1.5, seed) for seed in range(3)] + [noise(1.5, 7, level=0.05), babble(speech16k, 2.5)]
    noise_pcm = (np.concatenate([np.concatenate([b, quiet]) for b in bursts]) * 32767).astype("<i2").tobytes()
    runtime = await asyncio.to_thread(VoiceRuntime.load, PipelineConfig(llm_backend="llama_cpp"))
    try:
        client = SimulatedClient(instant_playback=True)
        policy = TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))
        session = VoiceSession(runtime, policy, client.emit, PipelineConfig(llm_backend="llama_cpp"))
        client.attach(session)
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished), timeout=60)  # the greeting
        await stream_pcm(session, noise_pcm)
        await stream_pcm(session, speech + bytes(32000 * 2))
        final = await client.wait_for(lambda e: isinstance(e, FinalTranscript) and e.text.strip(), timeout=60)
        assert "headache" in final.text.lower(), final
        anomalies = [(a.detail, a.value) for a in client.of(AcousticAnomaly) if a.kind == "non_speech"]
        assert anomalies, "the noise was heard as words and judged (the test's premise)"
        heard = [text for speaker, text in session.transcript if speaker == "patient"]
        assert heard == [final.text], f"noise became turns: {heard}"
        assert [e.text for e in client.of(FinalTranscript) if e.text.strip()] == [final.text]
        print(f"\nnon-speech anomalies {anomalies}; noise turns {session.stats.noise_turns}")
        await session.end("test_done")
    finally:
        runtime.close()
