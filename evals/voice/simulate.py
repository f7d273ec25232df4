"""Stream a WAV file through the full voice pipeline, as a browser client would.

    python -m voice.simulate FILE.wav [--fast] [--llm llama_cpp|none] [--no-speculation]

(the user's command: voice/simulate.py only starts this module's ``main``.)

Real models (tiny.en, Piper, the LLM backend), ``clinical_rules.TriageInterview`` as the
policy. The audio is paced by the clock (20 ms frames, like a microphone) unless ``--fast``;
after it, comfort noise keeps flowing until the agent has answered. Prints the transcripts,
the agent's replies and a per-turn latency table.

``SimulatedClient`` and ``stream_pcm`` are reused by the tests and by ``evals.voice.bench``: the
client "plays" the agent's audio in real time (as a browser's audio queue would) and sends
``playback_report`` when a reply has played out or was interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice.affect import AffectObserved
from voice.audio import float32_to_pcm16, pcm16_to_float32, resample
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyFinished,
    AgentReplyStarted,
    AgentResumed,
    AgentText,
    EscalationRaised,
    FinalTranscript,
    PartialTranscript,
    TurnMetrics,
    VoiceEvent,
)

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2


def load_wav(path: str | Path) -> bytes:
    """Any PCM16 WAV -> 16 kHz mono s16le."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = w.getframerate(), w.getnchannels()
        data = w.readframes(w.getnframes())
    audio = pcm16_to_float32(data)
    if channels > 1:
        audio = audio.reshape(-1, channels).mean(axis=1)
    return float32_to_pcm16(resample(audio, rate, SAMPLE_RATE))


def comfort_noise(ms: int, *, dbfs: float = -70.0, seed: int = 0) -> bytes:
    """Low background noise instead of digital zeros (which real microphones never send,
    and which the dead-microphone check rightly flags). -70 dBFS: a quiet room after the
    browser's noise suppression. Louder steady noise (-62..-50 dBFS) makes webrtcvad in
    mode 2 call seconds of it "speech" after an utterance (see docs/voice-pipeline.md)."""
    rng = np.random.default_rng(seed)
    n = SAMPLE_RATE * ms // 1000
    return float32_to_pcm16(rng.standard_normal(n).astype(np.float32) * (10 ** (dbfs / 20)))


def frames_of(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    if len(pcm) % frame_bytes:
        pcm += b"\x00" * (frame_bytes - len(pcm) % frame_bytes)
    return [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]


async def stream_pcm(session, pcm: bytes, *, realtime: bool = True, stop: Callable[[], bool] | None = None):
    """Feed ``pcm`` as 20 ms frames. Real time: frame i goes out at t0 + i*20 ms (an absolute
    schedule, so scheduling jitter does not accumulate); else as fast as possible, yielding
    to the loop between frames. ``stop()`` true ends early."""
    t0 = time.perf_counter()
    for i, frame in enumerate(frames_of(pcm)):
        if stop is not None and stop():
            return
        if realtime:
            delay = t0 + i * FRAME_MS / 1000.0 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        await session.feed_audio(frame)


@dataclass
class _Playing:
    reply_id: int
    chunks: list[tuple[float, float]] = field(default_factory=list)  # (start, dur_s) on the client clock
    reported_end: float = -1.0  # queue end that was last reported as played out
    interrupted: bool = False

    def played_ms(self, now: float) -> float:
        return sum(min(max(0.0, now - s), d) for s, d in self.chunks) * 1000.0

    def total_ms(self) -> float:
        return sum(d for _, d in self.chunks) * 1000.0

    def end(self) -> float:
        return max((s + d for s, d in self.chunks), default=0.0)


class SimulatedClient:
    """The host side of a session: collects events, plays agent audio in real time (one
    audio queue, like a browser) and reports playback back to the session.

    ``interrupt_delay_s``: how long the host takes to stop playback after AgentInterrupted
    (network + audio buffer); what plays in that time counts as played.
    ``instant_playback``: a client that has "played" audio as soon as it arrives (tests
    that do not exercise playback timing, so they need not wait for it)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        interrupt_delay_s: float = 0.0,
        instant_playback: bool = False,
    ):
        self.clock = clock
        self.instant_playback = instant_playback
        self.session = None
        self.events: list[VoiceEvent] = []
        self.received_at: list[float] = []
        self.interrupt_delay_s = interrupt_delay_s
        self._queue_end = 0.0
        self._held_at: float | None = None  # playback held (AgentPaused) from then
        self._playing: dict[int, _Playing] = {}
        self._waiters: list[tuple[Callable[[VoiceEvent], bool], asyncio.Future]] = []
        self._timers: set[asyncio.Task] = set()

    def attach(self, session) -> None:
        self.session = session

    async def emit(self, event: VoiceEvent) -> None:
        now = self.clock()
        self.events.append(event)
        self.received_at.append(now)
        if isinstance(event, AgentReplyStarted):
            self._playing[event.reply_id] = _Playing(event.reply_id)
        elif isinstance(event, AgentAudio):
            p = self._playing.setdefault(event.reply_id, _Playing(event.reply_id))
            start = max(now, self._queue_end)
            dur = len(event.pcm) / 2 / event.sample_rate
            if self.instant_playback:
                p.chunks.append((now - dur, dur))
                if self.session is not None:
                    self._spawn(self.session.playback_report(event.reply_id, p.total_ms()))
            else:
                p.chunks.append((start, dur))
                self._queue_end = start + dur
                self._schedule_report(p)
        elif isinstance(event, AgentPaused):
            if self._held_at is None:
                self._held_at = now + self.interrupt_delay_s
        elif isinstance(event, AgentResumed):
            if self._held_at is not None:
                self._shift_after(self._held_at, max(0.0, now - self._held_at))
                self._held_at = None
        elif isinstance(event, AgentInterrupted):
            p = self._playing.get(event.reply_id)
            held_at, self._held_at = self._held_at, None
            if p is not None:
                stop_at = now + self.interrupt_delay_s if held_at is None else min(held_at, now)
                played = p.played_ms(stop_at)
                p.chunks = [(s, min(d, max(0.0, stop_at - s))) for s, d in p.chunks]
                self._queue_end = min(self._queue_end, stop_at)
                p.interrupted = True
                if self.session is not None:
                    self._spawn(self.session.playback_report(event.reply_id, played))
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(event):
                fut.set_result(event)
                self._waiters.remove((pred, fut))

    def _shift_after(self, held_at: float, delta: float) -> None:
        """Playback held at ``held_at`` for ``delta`` s: what had not played yet plays later."""
        for p in self._playing.values():
            if p.interrupted:
                continue
            shifted: list[tuple[float, float]] = []
            for start, dur in p.chunks:
                if start >= held_at:
                    shifted.append((start + delta, dur))
                elif start + dur > held_at:  # split the chunk that was playing
                    shifted += [(start, held_at - start), (held_at + delta, start + dur - held_at)]
                else:
                    shifted.append((start, dur))
            if shifted != p.chunks:
                p.chunks = shifted
                self._schedule_report(p)
        if self._queue_end > held_at:
            self._queue_end += delta

    def _schedule_report(self, p: _Playing) -> None:
        """Report full playback when this reply's audio queue runs dry (like an
        AudioBufferSourceNode's ``onended``)."""

        async def report_when_done(expected_end: float):
            await asyncio.sleep(max(0.0, expected_end - self.clock()))
            if p.interrupted or p.end() != expected_end or p.reported_end == expected_end:
                return  # more audio came (a later timer reports), or the reply was cut
            p.reported_end = expected_end
            if self.session is not None:
                await self.session.playback_report(p.reply_id, p.total_ms())

        self._spawn(report_when_done(p.end()))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def wait_for(self, predicate: Callable[[VoiceEvent], bool], timeout: float = 60.0) -> VoiceEvent:
        """The first event (already received or future) matching ``predicate``."""
        for ev in self.events:
            if predicate(ev):
                return ev
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return await asyncio.wait_for(fut, timeout)

    async def wait_next(self, predicate: Callable[[VoiceEvent], bool], timeout: float = 60.0) -> VoiceEvent:
        """The next *future* event matching ``predicate``."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, fut))
        return await asyncio.wait_for(fut, timeout)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def audio_ms(self, reply_id: int) -> float:
        return sum(
            len(e.pcm) / 2 / e.sample_rate * 1000 for e in self.of(AgentAudio) if e.reply_id == reply_id
        )

    def close(self) -> None:
        for t in list(self._timers):
            t.cancel()


# --- CLI ----------------------------------------------------------------------------------


def _fmt(v) -> str:
    return "-" if v is None else f"{v:7.0f}"


def affect_line(ev: AffectObserved) -> str:
    """One turn's affect reading: the tags with the values that fired them, or the main features."""
    r = ev.reading
    f = r.features
    measured = (
        f"{f.phrases} phrase(s), {f.pauses} pause(s), {f.articulation_rate:.1f} syll/s, "
        f"{f.level_dbfs if f.level_dbfs is not None else float('nan'):.0f} dBFS, "
        f"pitch {f.pitch_median_st if f.pitch_median_st is not None else float('nan'):.1f} st, "
        f"{f.cost_ms:.0f} ms CPU"
        if f is not None
        else "not measured"
    )
    if not r.tags:
        return f"no tag ({measured}{', baseline' if r.in_baseline else ''})"
    flag = " ATTENTION" if r.attention else ""
    asked = f"; asks {', '.join(ev.questions_queued)}" if ev.questions_queued else ""
    return f"{'; '.join(t.explanation for t in r.tags)}{flag}{asked} ({measured})"


def print_report(client: SimulatedClient, out=sys.stdout) -> None:
    print("\n== conversation ==", file=out)
    texts: dict[int, list[str]] = {}
    for ev in client.events:
        if isinstance(ev, AgentText):
            texts.setdefault(ev.reply_id, []).append(f"{ev.text} [{ev.source}]")
        elif isinstance(ev, FinalTranscript):
            print(f"patient  (turn {ev.turn_id}): {ev.text}", file=out)
        elif isinstance(ev, EscalationRaised):
            print(f"!! ESCALATION (turn {ev.turn_id}, on_partial={ev.on_partial}): {ev.rule_ids}", file=out)
        elif isinstance(ev, AffectObserved):
            print(f"   how    (turn {ev.turn_id}): {affect_line(ev)}", file=out)
        elif isinstance(ev, AgentReplyFinished):
            said = " ".join(texts.get(ev.reply_id, []))
            flag = " (interrupted; heard: " + repr(ev.text) + ")" if ev.interrupted else ""
            print(f"agent    (reply {ev.reply_id}): {said}{flag}", file=out)
    partials = client.of(PartialTranscript)
    print(f"({len(partials)} partial transcripts)", file=out)
    print("\n== latency per turn (ms) ==", file=out)
    cols = ["endpoint", "asr_final", "llm_first_token", "first_clause", "tts_first_audio"]
    print(f"{'turn':>4} {'response':>8} {'answer':>8} " + " ".join(f"{c:>15}" for c in cols), file=out)
    for m in client.of(TurnMetrics):
        print(
            f"{m.turn_id:>4} {_fmt(m.response_onset_ms):>8} {_fmt(m.answer_onset_ms):>8} "
            + " ".join(f"{_fmt(m.stages.get(c)):>15}" for c in cols)
            + (f"  misses={','.join(m.budget_misses)}" if m.budget_misses else ""),
            file=out,
        )


async def run_file(path: str, *, fast: bool, llm: str | None, speculation: bool, tail_ms: int) -> int:
    from clinical_rules import TriageInterview
    from voice.config import PipelineConfig
    from voice.events import AgentReplyFinished as Finished
    from voice.pipeline import VoiceSession
    from voice.runtime import VoiceRuntime

    overrides = {"speculation": speculation}
    if llm:
        overrides["llm_backend"] = llm
    config = PipelineConfig.from_env(**overrides)
    pcm = load_wav(path)
    print(f"loading models (llm={config.llm_backend}) ...", file=sys.stderr)
    runtime = await asyncio.to_thread(VoiceRuntime.load, config)
    client = SimulatedClient()
    session = VoiceSession(runtime, TriageInterview(), client.emit, config)
    client.attach(session)
    try:
        await session.start()
        # Let the greeting play out, as a caller would.
        await client.wait_for(lambda e: isinstance(e, Finished) and e.turn_id == 0, timeout=60)
        await stream_pcm(session, pcm, realtime=not fast)
        # Keep the line open (background noise) until the agent has answered the last turn.
        done = asyncio.get_running_loop().create_future()

        def answered() -> bool:
            finals = client.of(FinalTranscript)
            if not finals:
                return False
            last = finals[-1].turn_id
            return any(isinstance(e, Finished) and e.turn_id >= last for e in client.events)

        async def noise():
            while not done.done():
                await stream_pcm(session, comfort_noise(1000), realtime=True, stop=answered)
                if answered():
                    done.set_result(True)

        try:
            await asyncio.wait_for(noise(), timeout=tail_ms / 1000.0)
        except TimeoutError:
            print("(no complete answer before the time limit)", file=sys.stderr)
        await session.end("simulation_done")
    finally:
        client.close()
        runtime.close()
    print_report(client)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m voice.simulate", description=__doc__.split("\n\n")[0])
    ap.add_argument("wav", help="16-bit PCM WAV (any rate, mono or stereo)")
    ap.add_argument(
        "--fast", action="store_true", help="feed audio as fast as possible (latencies then mean little)"
    )
    ap.add_argument("--llm", choices=["llama_cpp", "vllm", "none"], default=None)
    ap.add_argument("--no-speculation", action="store_true")
    ap.add_argument(
        "--tail-ms", type=int, default=30000, help="max time to wait for the answer after the audio"
    )
    args = ap.parse_args(argv)
    return asyncio.run(
        run_file(
            args.wav, fast=args.fast, llm=args.llm, speculation=not args.no_speculation, tail_ms=args.tail_ms
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
