from __future__ import annotations

import numpy as np
import pytest

from voice.audio import AudioFormatError, float32_to_pcm16, frame_bytes
from voice.events import SpeechPaused, SpeechResumed, SpeechStarted
from voice.vad import SegmenterConfig, SpeechSegmenter, WebRtcVad

FRAME = 0.02


def test_webrtc_vad_validates_configuration():
    with pytest.raises(ValueError):
        WebRtcVad(44100)
    with pytest.raises(ValueError):
        WebRtcVad(frame_ms=25)
    with pytest.raises(ValueError):
        WebRtcVad(aggressiveness=4)
    with pytest.raises(AudioFormatError) as err:
        WebRtcVad(16000, 20).is_speech(b"\0" * 320)
    assert err.value.code == "bad_frame_size"


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_webrtc_vad_separates_speech_from_noise(speech16k, frame_ms):
    size = frame_bytes(16000, frame_ms)

    def voiced_fraction(audio: np.ndarray) -> float:
        vad = WebRtcVad(16000, frame_ms, aggressiveness=2)  # fresh: webrtcvad adapts to its stream
        pcm = float32_to_pcm16(audio)
        return float(np.mean([vad.is_speech(pcm[i : i + size]) for i in range(0, len(pcm) - size + 1, size)]))

    noise = np.random.default_rng(0).normal(0, 10 ** (-60 / 20), 16000 * 3).astype(np.float32)
    speech = speech16k("I have had a sharp pain in my chest since this morning.")
    # Only the VAD's first ~100 ms of adaptation may count as speech.
    assert voiced_fraction(noise) < 0.1
    assert voiced_fraction(speech + noise[: speech.size]) > 0.6


RUN_ON = (
    "My son's nine, he's got a cough, since his cold last week he's been coughing at night, "
    "and now he says his ear hurts too."
)


def test_digital_silence_inside_speech_does_not_make_the_room_noise_after_it_speech(speech_pcm16k):
    """Piper's clause pauses are exact zeros; a -70 dBFS open microphone follows the statement
    (what the socket benchmark streams). Raw webrtcvad adapts its noise estimate to the zeros
    and then calls that faint noise speech for seconds, so the turn "ended" 2.5 s late (issue
    12); the dithered detector ends it within the hangover."""
    import webrtcvad

    from evals.voice.simulate import comfort_noise

    speech = speech_pcm16k(RUN_ON)
    samples = np.frombuffer(speech, dtype="<i2")
    assert np.count_nonzero(samples == 0) > 16000 * 0.2, "the clause pauses are digital silence"
    speech_end = (np.flatnonzero(np.abs(samples) > 327)[-1] + 1) / 16000
    lead = comfort_noise(1000, dbfs=-70.0, seed=1)
    pcm = lead + speech + comfort_noise(3000, dbfs=-70.0, seed=2)
    size = 640

    def segment_end(is_speech) -> float:
        seg = SpeechSegmenter(SegmenterConfig(hangover_ms=200, resume_voiced_ms=100))
        for i in range(len(pcm) // size):
            frame = pcm[i * size : (i + 1) * size]
            seg.feed(frame, is_speech(frame), i * FRAME)
        return seg.speech_end - 1.0 - speech_end

    raw = webrtcvad.Vad(2)
    assert segment_end(lambda f: raw.is_speech(f, 16000)) > 1.0, "the failure this guards against"
    assert 0.0 < segment_end(WebRtcVad(16000, 20, 2).is_speech) < 0.3


# --- segmenter on scripted VAD decisions ----------------------------------------------


def run_pattern(pattern: str, config: SegmenterConfig | None = None, seg: SpeechSegmenter | None = None):
    """Feed one 20 ms frame per character ('x' voiced, '.' not); frame i has value i/1000
    so the buffered audio shows exactly which frames were kept."""
    seg = seg or SpeechSegmenter(config or SegmenterConfig())
    events = []
    for i, c in enumerate(pattern):
        frame = float32_to_pcm16(np.full(320, (i % 900) / 1000, np.float32))
        events += seg.feed(frame, c == "x", i * FRAME)
    return seg, events


def test_speech_start_reports_onset_not_detection_time():
    seg, events = run_pattern("." * 20 + "xxxxxxxx")
    (start,) = events
    assert isinstance(start, SpeechStarted) and start.turn_id == 1
    assert start.t == pytest.approx(20 * FRAME)  # first voiced frame
    assert start.detected_t == pytest.approx(26 * FRAME)  # 6th voiced frame confirmed it (120 ms)
    assert seg.state == SpeechSegmenter.SPEAKING


def test_quick_start_over_the_agent_starts_on_80_ms_of_voice():
    """While the agent speaks the owner sets ``quick_start``: the burst (and so the barge-in
    hold) starts on the 4th voiced frame instead of the 6th; the onset is the same."""
    seg = SpeechSegmenter()
    seg.quick_start = True
    _, events = run_pattern("." * 20 + "xxxxxxxx", seg=seg)
    (start,) = events
    assert start.t == pytest.approx(20 * FRAME)
    assert start.detected_t == pytest.approx(24 * FRAME)  # 80 ms, not 120
    assert seg.voiced_ms == 4 * 20 + 4 * 20
    # without it, three or four voiced frames are a blip
    _, events = run_pattern("." * 20 + "xxxx" + "." * 10)
    assert events == []


def test_short_blips_do_not_start_speech():
    _, events = run_pattern(".....xx......x.x......xx....." * 3)
    assert events == []


def test_debounce_counts_voiced_frames_inside_the_window():
    # 6 voiced frames spread over a 10-frame window still count (stop consonants, glottal gaps).
    _, events = run_pattern("....x.xx.x.xx")
    assert [type(e) for e in events] == [SpeechStarted]
    assert events[0].t == pytest.approx(4 * FRAME)


def test_pause_after_hangover_and_resume_with_onset():
    pattern = "." * 5 + "x" * 20 + "." * 30 + "x" * 10 + "." * 15
    seg, events = run_pattern(pattern)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused]
    started, paused, resumed, paused2 = events
    assert paused.t == pytest.approx(25 * FRAME)  # end of the last voiced frame
    assert resumed.t == pytest.approx(55 * FRAME)  # first voiced frame after the pause
    assert paused2.t == pytest.approx(65 * FRAME)
    assert {e.turn_id for e in events} == {1}
    assert seg.voiced_ms == pytest.approx(30 * 20)
    assert seg.silence_ms(80 * FRAME) == pytest.approx(15 * 20)


def test_unvoiced_gaps_shorter_than_hangover_do_not_pause():
    _, events = run_pattern("x" * 10 + "...." + "x" * 10 + "......" + "x" * 5)
    assert [type(e) for e in events] == [SpeechStarted]


def test_turn_audio_has_preroll_and_pauses_and_take_new_audio_slices_it():
    cfg = SegmenterConfig(preroll_ms=100)
    seg, _ = run_pattern("." * 20 + "x" * 6, cfg)
    first = seg.take_new_audio()
    # Frames 15..25: 5 frames (100 ms) of pre-roll before the onset frame 20.
    assert seg.audio_start == pytest.approx(15 * FRAME)
    assert first.size == 11 * 320
    assert first[0] == pytest.approx(15 / 1000, abs=1e-4) and first[-1] == pytest.approx(25 / 1000, abs=1e-4)
    for i in range(26, 60):  # speech then a pause: pause audio stays in the turn
        seg.feed(float32_to_pcm16(np.full(320, i / 1000, np.float32)), i < 40, i * FRAME)
    more = seg.take_new_audio()
    assert more.size == 34 * 320
    assert np.array_equal(np.concatenate([first, more]), seg.turn_audio())
    assert seg.take_new_audio().size == 0


def test_end_turn_returns_audio_and_next_speech_is_a_new_turn():
    seg, events = run_pattern("." * 5 + "x" * 20 + "." * 20)
    turn = seg.end_turn()
    assert turn.turn_id == 1 and turn.speech_start == pytest.approx(5 * FRAME)
    assert turn.speech_end == pytest.approx(25 * FRAME)
    assert turn.audio.size == 45 * 320  # all 45 frames: the 5 before the onset are pre-roll
    assert turn.audio_start == 0.0
    assert not seg.in_turn and seg.turn_audio().size == 0 and seg.end_turn() is None
    _, events = run_pattern("x" * 8, seg=seg)
    assert [type(e) for e in events] == [SpeechStarted] and events[0].turn_id == 2


def test_segmenter_on_real_speech_with_a_pause(utterance_with_pauses):
    """Piper speech with a 600 ms hesitation: start, pause, resume and end land near truth."""
    utt = utterance_with_pauses("I have a pain in my", 600, "chest.")
    vad = WebRtcVad(16000, 20, 2)
    seg = SpeechSegmenter()
    pcm = float32_to_pcm16(utt.audio)
    events = []
    for i in range(len(pcm) // 640):
        frame = pcm[i * 640 : (i + 1) * 640]
        events += seg.feed(frame, vad.is_speech(frame), i * FRAME)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused]
    started, paused, resumed, ended = events
    (pause_start, pause_end) = utt.pauses[0]
    assert abs(started.t - utt.speech_start_s) <= 0.06
    assert abs(paused.t - pause_start) <= 0.1
    assert abs(resumed.t - pause_end) <= 0.1
    assert abs(ended.t - utt.speech_end_s) <= 0.1
