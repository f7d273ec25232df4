"""The simulation tool: WAV loading, the simulated client's playback model, and one real
``python -m voice.simulate --fast`` run (real ASR/TTS and rules; LLM off to keep it short)."""

import asyncio
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, frames_of, load_wav
from voice.events import AgentAudio, AgentInterrupted, AgentReplyStarted

ROOT = Path(__file__).resolve().parents[2]


def _write_wav(path: Path, audio: np.ndarray, rate: int, channels: int = 1) -> None:
    data = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        data = np.repeat(data[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def test_load_wav_resamples_and_downmixes(tmp_path):
    t = np.arange(48000) / 48000
    _write_wav(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 48000, channels=2)
    pcm = load_wav(tmp_path / "a.wav")
    assert len(pcm) == 16000 * 2  # 1 s at 16 kHz, 16-bit mono
    x = np.frombuffer(pcm, dtype="<i2")
    assert 0.4 < np.abs(x).max() / 32768 < 0.6


def test_comfort_noise_is_quiet_and_frames_pad():
    noise = np.frombuffer(comfort_noise(1000), dtype="<i2").astype(np.float64) / 32768
    assert 20 * np.log10(np.sqrt(np.mean(noise**2))) == pytest.approx(-70, abs=1.5)
    frames = frames_of(b"\x01\x00" * 330)
    assert len(frames) == 2 and all(len(f) == 640 for f in frames)


class _Recorder:
    def __init__(self):
        self.reports: list[tuple[int, float]] = []

    async def playback_report(self, reply_id, played_ms):
        self.reports.append((reply_id, played_ms))


async def test_client_plays_in_real_time_and_reports_what_was_heard():
    now = [100.0]
    client = SimulatedClient(clock=lambda: now[0])
    rec = _Recorder()
    client.attach(rec)
    await client.emit(AgentReplyStarted(1, 0, "greeting", "x", 100.0))
    for _ in range(10):  # 1 s of audio arrives at once: it queues
        await client.emit(AgentAudio(1, 0, b"\x00\x00" * 1600, 16000, 100.0))
    now[0] = 100.35  # 350 ms later the patient barges in
    await client.emit(AgentInterrupted(1, 1, 100.2, 100.35))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert rec.reports == [(1, pytest.approx(350.0))]
    client.close()


async def test_instant_client_reports_all_received_audio():
    client = SimulatedClient(instant_playback=True)
    rec = _Recorder()
    client.attach(rec)
    await client.emit(AgentAudio(4, 0, b"\x00\x00" * 1600, 16000, 0.0))
    await client.emit(AgentAudio(4, 0, b"\x00\x00" * 800, 16000, 0.0))
    await asyncio.sleep(0)
    assert rec.reports[-1] == (4, pytest.approx(150.0))
    ev = await client.wait_for(lambda e: isinstance(e, AgentAudio))
    assert ev.reply_id == 4
    client.close()


@pytest.mark.models
@pytest.mark.timeout(600)
def test_cli_runs_a_wav_through_the_pipeline(tmp_path):
    from tests.speech import speech_pcm16k

    pcm = np.frombuffer(speech_pcm16k("I have had a headache since this morning."), dtype="<i2")
    audio = np.concatenate([pcm.astype(np.float32) / 32768, np.zeros(16000, np.float32)])
    _write_wav(tmp_path / "turn.wav", audio, 16000)
    proc = subprocess.run(
        [sys.executable, "-m", "voice.simulate", str(tmp_path / "turn.wav"), "--fast", "--llm", "none"],
        cwd=ROOT, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "patient  (turn" in out and "headache" in out.lower()
    assert "agent    (reply 2)" in out  # the answer to the patient's turn
    assert "latency per turn" in out
