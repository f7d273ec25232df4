from __future__ import annotations

import numpy as np
import pytest

from voice.audio import (
    AcousticMonitor,
    AnomalyConfig,
    AudioFormatError,
    FrameBuffer,
    StreamResampler,
    float32_to_pcm16,
    frame_bytes,
    pcm16_to_float32,
    peak_dbfs,
    resample,
    resample_pcm16,
    rms_dbfs,
    split_frames,
    validate_pcm_frame,
)


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / rate)[np.argmax(spectrum)])


def test_pcm_round_trip_and_saturation():
    ints = np.array([-32768, -1, 0, 1, 32767], dtype="<i2")
    audio = pcm16_to_float32(ints.tobytes())
    assert audio.dtype == np.float32
    assert audio[0] == -1.0 and audio[2] == 0.0
    assert float32_to_pcm16(audio) == ints.tobytes()
    # Out-of-range floats saturate instead of wrapping around.
    assert np.frombuffer(float32_to_pcm16(np.array([1.5, -2.0], np.float32)), "<i2").tolist() == [
        32767,
        -32768,
    ]


@pytest.mark.parametrize("rate", [8000, 16000, 32000, 48000])
@pytest.mark.parametrize("ms", [10, 20, 30])
def test_validate_accepts_whole_frames(rate, ms):
    assert validate_pcm_frame(b"\0" * frame_bytes(rate, ms), rate) == ms


@pytest.mark.parametrize(
    ("data", "rate", "code"),
    [
        (b"", 16000, "empty_frame"),
        (b"\0" * 641, 16000, "odd_length"),
        (b"\0" * 500, 16000, "bad_frame_size"),
        (b"\0" * 640, 44100, "unsupported_rate"),
        (b"\0" * 1280, 16000, "bad_frame_size"),  # 40 ms is not a VAD frame
    ],
)
def test_validate_rejects_with_a_code(data, rate, code):
    with pytest.raises(AudioFormatError) as err:
        validate_pcm_frame(data, rate)
    assert err.value.code == code


def test_validate_respects_allowed_frame_ms():
    with pytest.raises(AudioFormatError):
        validate_pcm_frame(b"\0" * 320, 16000, allowed_frame_ms=(20,))


def test_split_frames_and_frame_buffer_agree():
    data = bytes(range(256)) * 30  # 7680 bytes = 240 ms at 16 kHz
    frames, rest = split_frames(data[:-10], 16000, 20)
    assert len(frames) == 11 and all(len(f) == 640 for f in frames) and len(rest) == 630
    buf = FrameBuffer(16000, 20)
    out = []
    for i in range(0, len(data), 333):  # odd chunk sizes as a websocket delivers them
        out.extend(buf.push(data[i : i + 333]))
    assert b"".join(out) == data and buf.pending_bytes == 0


@pytest.mark.parametrize(("src", "dst"), [(48000, 16000), (22050, 16000), (8000, 16000)])
def test_resample_keeps_pitch_and_level(src, dst):
    x = sine(440, src, 1.0)
    y = resample(x, src, dst)
    assert abs(y.size - dst) <= 2
    assert abs(dominant_hz(y, dst) - 440) < 2
    assert abs(rms_dbfs(y[1000:-1000]) - rms_dbfs(x)) < 0.2


def test_resample_removes_content_above_new_nyquist():
    x = sine(12000, 48000, 0.5)  # above 8 kHz: must not alias into the 16 kHz output
    assert rms_dbfs(resample(x, 48000, 16000)[200:-200]) < -60  # edges: filter start-up


def test_stream_resampler_matches_one_shot():
    x = sine(300, 48000, 1.0) + sine(2500, 48000, 1.0, 0.2)
    stream = StreamResampler(48000, 16000)
    chunks = [stream.process(x[i : i + 960]) for i in range(0, x.size, 960)]  # 20 ms chunks
    chunks.append(stream.process(np.zeros(0, np.float32), last=True))
    streamed = np.concatenate(chunks)
    whole = resample(x, 48000, 16000)
    assert abs(streamed.size - whole.size) <= 2
    n = min(streamed.size, whole.size)
    assert np.max(np.abs(streamed[:n] - whole[:n])) < 1e-3


def test_resample_pcm16_passthrough_and_convert():
    pcm = float32_to_pcm16(sine(440, 16000, 0.1))
    assert resample_pcm16(pcm, 16000, 16000) is pcm
    assert abs(len(resample_pcm16(pcm, 16000, 48000)) - 3 * len(pcm)) <= 4


def test_levels():
    full = sine(1000, 16000, 1.0, amp=1.0)
    assert rms_dbfs(full) == pytest.approx(-3.01, abs=0.05)
    assert peak_dbfs(full) == pytest.approx(0.0, abs=0.01)
    assert rms_dbfs(full * 0.1) == pytest.approx(-23.01, abs=0.05)
    assert rms_dbfs(np.zeros(160, np.float32)) == -120.0
    assert peak_dbfs(np.zeros(0, np.float32)) == -120.0


# --- anomalies ------------------------------------------------------------------------


def _feed(monitor, audio, *, speech, t0=0.0, turn_id=1, frame=320):
    out = []
    for i in range(0, audio.size, frame):
        out += monitor.feed(audio[i : i + frame], is_speech=speech, t=t0 + i / 16000, turn_id=turn_id)
    return out


def test_dead_microphone_reported_once_after_digital_silence():
    mon = AcousticMonitor(AnomalyConfig(dead_mic_s=3.0))
    events = _feed(mon, np.zeros(16000 * 5, np.float32), speech=False)
    assert [e.kind for e in events] == ["dead_microphone"]
    assert events[0].value == pytest.approx(3.0, abs=0.03) and events[0].t == pytest.approx(3.0, abs=0.03)
    # Sound comes back, then silence again: a new report.
    assert _feed(mon, sine(200, 16000, 0.2, 0.1), speech=True, t0=5.0) == []
    again = _feed(mon, np.zeros(16000 * 4, np.float32), speech=False, t0=5.2)
    assert [e.kind for e in again] == ["dead_microphone"]


def test_room_noise_is_not_a_dead_microphone():
    noise = np.random.default_rng(0).normal(0, 10 ** (-65 / 20), 16000 * 5).astype(np.float32)
    assert _feed(AcousticMonitor(), noise, speech=False) == []


def test_clipping_and_low_level_judged_per_turn(speech16k):
    mon = AcousticMonitor()
    speech = speech16k("I have a pain in my chest.")
    assert _feed(mon, speech, speech=True) == []
    assert mon.end_turn(t=3.0, turn_id=1) == [], "normal Piper speech is neither clipped nor quiet"

    _feed(mon, np.clip(speech * 8, -1, 1), speech=True, turn_id=2)
    (clip,) = mon.end_turn(t=6.0, turn_id=2)
    assert clip.kind == "clipping" and clip.value > 0.01 and clip.turn_id == 2

    _feed(mon, speech * 0.003, speech=True, turn_id=3)
    (low,) = mon.end_turn(t=9.0, turn_id=3)
    assert low.kind == "low_level" and low.value < -45

    # Too little voiced audio to judge: nothing.
    _feed(mon, np.clip(speech[:1600] * 8, -1, 1), speech=True, turn_id=4)
    assert mon.end_turn(t=10.0, turn_id=4) == []


def test_recent_voiced_level_counts_only_voiced_frames_in_the_window():
    mon = AcousticMonitor()
    loud = np.full(320, 0.1, dtype=np.float32)  # -20 dBFS
    quiet = np.full(320, 0.001, dtype=np.float32)  # -60 dBFS
    for i in range(10):
        mon.feed(loud, is_speech=True, t=i * 0.02, turn_id=1)
    mon.feed(loud, is_speech=False, t=0.2, turn_id=1)  # unvoiced: never counted
    for i in range(5):
        mon.feed(quiet, is_speech=True, t=1.0 + i * 0.02, turn_id=1)
    assert mon.recent_voiced_dbfs(since=0.0) > -30.0  # mostly the loud frames
    assert mon.recent_voiced_dbfs(since=0.9) == pytest.approx(-60.0, abs=0.1)  # this burst only
    assert mon.recent_voiced_dbfs(since=2.0) == -120.0  # nothing voiced since


def test_quiet_run_is_how_long_the_latest_frames_were_below_a_level_voiced_or_not():
    """The barge-in release's cue that a held backchannel's voice stopped: webrtcvad may still
    call those frames speech, the level does not."""
    mon = AcousticMonitor()
    loud = np.full(320, 0.1, dtype=np.float32)  # -20 dBFS
    quiet = np.full(320, 0.0003, dtype=np.float32)  # -70 dBFS, the room
    assert mon.quiet_ms(-50.0) == 0.0
    for i in range(5):
        mon.feed(loud, is_speech=True, t=i * 0.02, turn_id=1)
    assert mon.quiet_ms(-50.0) == 0.0
    for i in range(3):
        mon.feed(quiet, is_speech=True, t=0.1 + i * 0.02, turn_id=1)  # the VAD's tail
    assert mon.quiet_ms(-50.0) == pytest.approx(60.0)
    assert mon.quiet_ms(-80.0) == 0.0
    mon.feed(loud, is_speech=True, t=0.16, turn_id=1)
    assert mon.quiet_ms(-50.0) == 0.0, "a loud frame ends the run"
