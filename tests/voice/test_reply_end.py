"""When a reply ends (``AgentReplyFinished`` → ``agent_reply_end``, state → listening) after a
hold and ``resume``: at the real end of playback, which the hold moved by its length, not at
the reply's original estimated end (docs/protocol.md, §3).

Real VAD, segmenter, barge-in gate, rules and Piper. The recognizer is a TEST DOUBLE
(``ScriptedRecognizer`` from tests/fakes.py, silent and slow): it hears no words and takes a fixed time for each decode (partials
too, so none is back before the burst's pause: a short burst whose partials heard no word is
let go at its pause), so the burst over the agent is a backchannel that holds playback for a
known, long time: until the decode of the whole burst. The
client here plays the agent's audio in real time and never sends ``playback`` reports (like
the browser, which reports a reply only after ``agent_reply_end``), so the server's own
playback estimate decides the end."""

from __future__ import annotations

import asyncio
import time

import pytest

from evals.voice.simulate import comfort_noise, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer
from tests.speech import speech_pcm16k
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentResumed,
    StateChanged,
    VoiceEvent,
)
from voice.pipeline import VoiceSession

pytestmark = [pytest.mark.models, pytest.mark.timeout(120)]

DECODE_S = 0.8  # each final decode of the burst: the hold lasts at least this long


class SilentPlayer:
    """Records events with their arrival time; never reports playback."""

    def __init__(self):
        self.events: list[tuple[float, VoiceEvent]] = []

    async def emit(self, event: VoiceEvent) -> None:
        self.events.append((time.monotonic(), event))

    def first(self, kind, pred=lambda e: True) -> tuple[float, VoiceEvent] | None:
        return next(((t, e) for t, e in self.events if isinstance(e, kind) and pred(e)), None)


async def _feed_until(session, done, max_s: float) -> None:
    """An open microphone (quiet noise, real time) until ``done()`` or ``max_s``."""
    t0, i = time.monotonic(), 0
    while not done() and time.monotonic() - t0 < max_s:
        await stream_pcm(session, comfort_noise(20, seed=i))
        i += 1
        await asyncio.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))


async def test_reply_end_after_a_hold_waits_for_the_held_time():
    config = PipelineConfig(llm_backend="none")
    # TEST DOUBLE: no model; every decode finds no words and takes ``DECODE_S``
    recognizer = ScriptedRecognizer(lambda _seconds, _partial: "", decode_s=DECODE_S)
    runtime = FakeRuntime(config, recognizer, warm=False)
    player = SilentPlayer()
    from clinical_rules import PatientContext, TriageInterview

    session = VoiceSession(
        runtime, TriageInterview(context=PatientContext(subject="self")), player.emit, config
    )
    try:
        await session.start()
        await _feed_until(session, lambda: player.first(AgentAudio) is not None, 60)
        greeting = player.first(AgentReplyStarted)[1]
        await _feed_until(session, lambda: False, 0.6)
        # A backchannel over the greeting: held at ~100 ms, released after the slow decode.
        await stream_pcm(session, speech_pcm16k("Mm-hmm."))
        await _feed_until(session, lambda: player.first(AgentReplyFinished) is not None, 60)
        await session.wait_idle()

        assert player.first(AgentInterrupted) is None
        t_pause, paused = player.first(AgentPaused)
        t_resume, resumed = player.first(AgentResumed)
        t_end, finished = player.first(AgentReplyFinished)
        assert paused.reply_id == resumed.reply_id == finished.reply_id == greeting.reply_id
        assert not finished.interrupted
        held_s = t_resume - t_pause
        assert held_s >= DECODE_S  # long enough that the old early end is far off
        audio = [(t, e) for t, e in player.events if isinstance(e, AgentAudio)]
        # The player's real-time queue: back to back from the first frame, stopped while held.
        queue_end = 0.0
        for t, e in audio:
            queue_end = max(queue_end, t) + len(e.pcm) / 2 / e.sample_rate
        playback_end = queue_end + held_s if t_pause < queue_end else queue_end
        # Not before playback really ended (one hold-length early was the bug) ...
        assert t_end >= playback_end - 0.1, (t_end, playback_end, held_s)
        # ... and not much after it either.
        assert t_end <= playback_end + 0.5, (t_end, playback_end)
        listening = [
            t
            for t, e in player.events
            if isinstance(e, StateChanged) and e.current == "listening" and t >= t_pause
        ]
        assert listening and listening[0] >= playback_end - 0.1
    finally:
        await session.end("test")
        runtime.compute.close()
        await asyncio.sleep(0)
