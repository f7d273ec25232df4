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


@pytest.mark.parametrize(
    ("text", "logprob", "no_speech", "speech"),
    [
        # noise's loop of a long phrase, unsure: only the partial rule catches it
        (
            "You not going to be a bad guy, I'm not going to be a bad guy, I'm not going to be a bad guy, I",
            -0.9,
            0.35,
            False,
        ),
        ("I'm not going to be able to do that.", -1.96, 0.32, False),
        ("I have crud,", -1.06, 0.07, False),  # a guess: the next partial has the words
        ("I have crushing chest pain and I can't.", -0.27, 0.02, True),
        ("My son is nine, and he has", -0.45, 0.05, True),
        ("I can't breathe, I can't breathe", -0.3, 0.05, True),  # sure repetition is speech
        ("my chest hurts so much my chest hurts so much", -0.2, 0.05, True),
    ],
)
def test_partials_have_a_higher_bar(text, logprob, no_speech, speech):
    assert sf.judge_partial(text, logprob, no_speech).speech is speech
    if not speech and logprob >= sf.MIN_AVG_LOGPROB:
        assert sf.judge(text, logprob, no_speech).speech, "a final with these numbers would pass"


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
    from evals.voice.simulate import SimulatedClient, stream_pcm
    from tests.speech import speech_pcm16k
    from voice.config import PipelineConfig
    from voice.events import AcousticAnomaly, AgentReplyFinished, FinalTranscript
    from voice.pipeline import VoiceSession
    from voice.runtime import VoiceRuntime

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


# --- partial transcripts (issue 17 part 9) ---------------------------------------------------


def sox_noise(spec: list[str], seconds: float) -> bytes:
    """16 kHz s16le noise made by sox (``-R``: the same samples every run)."""
    import subprocess

    return subprocess.run(
        ["sox", "-R", "-n", "-r", "16000", "-b", "16", "-c", "1", "-e", "signed-integer", "-t", "raw", "-"]
        + ["synth", str(seconds), *spec],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout


# White, pink and brown noise, and noise that comes and goes at a syllable rate like speech.
SOX_NOISES = [
    ["whitenoise", "vol", "0.3"],
    ["pinknoise", "vol", "0.5"],
    ["brownnoise", "vol", "0.7"],
    ["pinknoise", "tremolo", "4", "90", "vol", "0.6"],
    ["whitenoise", "band", "800", "600", "tremolo", "5", "80", "vol", "0.8"],
]


@pytest.mark.models
@pytest.mark.timeout(300)
async def test_noise_partials_never_reach_captions_or_the_rules():
    """Real sox noise through the real streaming tiny.en in a real VoiceSession: every partial
    Whisper invents from it is dropped (no caption, no dashboard line, nothing for the rules)
    and counted as an acoustic anomaly; speech after it still gives partials and a turn."""
    from clinical_rules import PatientContext, TriageInterview
    from evals.voice.simulate import SimulatedClient, stream_pcm
    from tests.speech import speech_pcm16k
    from voice.config import PipelineConfig
    from voice.events import (
        AcousticAnomaly,
        AgentReplyFinished,
        AssessmentUpdated,
        EscalationRaised,
        FinalTranscript,
        PartialTranscript,
        SpeechStarted,
    )
    from voice.pipeline import VoiceSession
    from voice.runtime import VoiceRuntime

    quiet = bytes(32000 * 2)  # 1 s between bursts: each burst is a turn of its own
    noise_pcm = b"".join(sox_noise(spec, 2.5) + quiet for spec in SOX_NOISES)
    speech = speech_pcm16k("I have had a headache since this morning.")
    config = PipelineConfig(llm_backend="llama_cpp")
    runtime = await asyncio.to_thread(VoiceRuntime.load, config)
    try:
        client = SimulatedClient(instant_playback=True)
        policy = TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))
        session = VoiceSession(runtime, policy, client.emit, config)
        client.attach(session)
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished), timeout=60)  # the greeting
        await stream_pcm(session, noise_pcm)
        noise_turns = {e.turn_id for e in client.of(SpeechStarted)}
        await stream_pcm(session, speech + bytes(32000 * 2))
        final = await client.wait_for(lambda e: isinstance(e, FinalTranscript) and e.text.strip(), timeout=60)
        assert "headache" in final.text.lower(), final
        assert noise_turns and final.turn_id not in noise_turns, "the noise started turns (the premise)"

        judged = [a for a in client.of(AcousticAnomaly) if a.kind == "non_speech" and a.on_partial]
        assert judged and session.stats.non_speech_partials >= len(judged), (
            "Whisper invented words from the noise in partials (the premise)"
        )
        assert {a.turn_id for a in judged} <= noise_turns
        assert len({a.turn_id for a in judged}) == len(judged), "one anomaly per turn, not per partial"
        shown = [
            e.text
            for e in client.of(PartialTranscript)
            if e.turn_id in noise_turns and sf._WORD.search(e.text.lower())
        ]
        assert shown == [], f"partials of noise reached captions and the rules: {shown}"
        ruled = [
            e for e in client.of(AssessmentUpdated) + client.of(EscalationRaised) if e.turn_id in noise_turns
        ]
        assert ruled == [], f"the rules saw the noise: {ruled}"
        heard = [e.text for e in client.of(PartialTranscript) if e.turn_id == final.turn_id]
        assert any("headache" in t.lower() for t in heard), f"speech partials still shown: {heard}"
        print(
            f"\n{len(SOX_NOISES)} sox noise bursts: {session.stats.non_speech_partials} partials dropped, "
            f"anomalies {[(a.detail, a.value) for a in judged]}"
        )
        await session.end("test_done")
    finally:
        runtime.close()


class InventingRecognizer:
    """TEST DOUBLE (no model): "hears" a red flag in every partial with the numbers Whisper
    reports for noise (``confident=False``) or for clear speech, and nothing in the final."""

    sample_rate = 16000
    supports_partial = True

    def __init__(self, confident: bool):
        self.numbers = (-0.2, 0.02) if confident else (-1.7, 0.75)

    def transcribe(self, audio, *, prompt=None, partial=False, word_timestamps=None, full_window=False):
        from voice.interfaces import Transcription

        if partial:
            return Transcription("I can't breathe and my lips are blue", *self.numbers, (), 0.0)
        return Transcription("", -10.0, 0.95, (), 0.0)


@pytest.mark.models
@pytest.mark.timeout(240)
@pytest.mark.parametrize("confident", [False, True])
async def test_a_red_flag_invented_in_a_partial_raises_no_alert(confident):
    """The same partial words escalate when the decode is sure of them (the control), and
    raise nothing, show nothing and count one anomaly when Whisper's numbers say noise."""
    from evals.voice.simulate import comfort_noise, stream_pcm
    from tests.speech import speech_pcm16k
    from tests.voice.test_pipeline_logic import _session
    from voice.events import AcousticAnomaly, EscalationRaised, PartialTranscript

    runtime, session, client = await _session(InventingRecognizer(confident))
    try:
        # Any sound the VAD takes for speech opens a turn; its words come from the double.
        await stream_pcm(
            session, speech_pcm16k("I have had a headache since this morning.") + comfort_noise(1500)
        )
        await asyncio.sleep(0.5)
        escalations = client.of(EscalationRaised)
        shown = [e.text for e in client.of(PartialTranscript) if e.text]
        anomalies = [a for a in client.of(AcousticAnomaly) if a.on_partial]
        if confident:
            assert escalations and shown, "sure words escalate on the partial (the control)"
            assert anomalies == []
        else:
            assert escalations == [] and shown == [], (escalations, shown)
            assert len(anomalies) == 1 and anomalies[0].detail in {"no_speech", "low_confidence"}
            assert session.stats.non_speech_partials >= 1
    finally:
        await session.end("test")
        client.close()
        runtime.close()
