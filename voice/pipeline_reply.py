"""One agent reply: clauses in, synthesized audio out, and a record of what was played.

A ``Reply`` reads an async source of clauses (cached acknowledgement, the guardrail's LLM
clauses, or a fixed script), starts synthesis of each clause as soon as it is known (so
clause n+1 renders while clause n plays) and hands text + audio events to the outbox in
order. A speculative reply does all of that behind a closed ``gate``: it renders but sends
nothing until ``open()``; ``cancel()`` discards it without a sound.

The ``Timeline`` maps played milliseconds back to words, so an interrupted reply's record
holds only what the patient actually heard.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np

from voice.events import AgentAudio, AgentText, ReplySource, VoiceEvent
from voice.tts import ClauseSpeaker, chunk_pcm, pcm_ms

log = logging.getLogger(__name__)

# Silence kept after an acknowledgement before the question: Piper ends a sentence with
# 100-250 ms of silence ("Okay." 245 ms), which the caller hears as a gap before the answer
# (issue 12, answer heard). 120 ms + the question's own ~50 ms lead-in: a short, natural gap.
ACK_GAP_MS = 120
_SILENT = 328  # |sample| below -40 dBFS counts as silence


def trim_trailing_silence(pcm: bytes, sample_rate: int, keep_ms: float) -> bytes:
    """``pcm`` (s16le) with its trailing silence cut to ``keep_ms``; unchanged if shorter."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _SILENT)
    if loud.size == 0:
        return pcm
    end = min(samples.size, int(loud[-1]) + 1 + int(sample_rate * keep_ms / 1000))
    return pcm[: end * 2]


@dataclass(frozen=True, slots=True)
class ClauseItem:
    text: str
    source: ReplySource
    role: str  # ack / required / script
    carries_prompt: bool  # the clause with the question / disposition / script (answer onset)


@dataclass
class ClauseAudio:
    index: int
    text: str
    source: ReplySource
    start_ms: float  # offset of its first sample in the reply's audio
    dur_ms: float = 0.0


@dataclass
class ReplyContext:
    """Shared between a reply and its clause source: generation timings (session clock),
    the guardrail behind it (to cancel), and which clause carries the prompt."""

    marks: dict[str, float] = field(default_factory=dict)
    guarded: object | None = None
    fallback_used: bool = False
    answer_index: int = -1


@dataclass
class Timeline:
    clauses: list[ClauseAudio] = field(default_factory=list)
    sent_ms: float = 0.0  # audio handed to the outbox so far

    def text_sent(self) -> str:
        return " ".join(c.text for c in self.clauses if c.dur_ms > 0)

    def text_played(self, played_ms: float) -> str:
        """Whole clauses played, plus the words of a partly played clause in proportion
        to its played audio (rounded down: a half-heard word was not said)."""
        out: list[str] = []
        for c in self.clauses:
            if c.dur_ms <= 0 or played_ms <= c.start_ms:
                break
            if played_ms >= c.start_ms + c.dur_ms:
                out.append(c.text)
                continue
            words = c.text.split()
            n = math.floor(len(words) * (played_ms - c.start_ms) / c.dur_ms)
            if n:
                out.append(" ".join(words[:n]))
            break
        return " ".join(out)


class Reply:
    """Renders and sends one reply. ``finished`` resolves when every clause was sent (or it
    was cancelled); playback tracking is the session's job."""

    def __init__(
        self,
        *,
        turn_id: int,
        kind: str,
        required_text: str,
        source: AsyncIterator[ClauseItem],
        speaker: ClauseSpeaker,
        put: Callable[[VoiceEvent], None],
        clock: Callable[[], float],
        speculative: bool = False,
        context: ReplyContext | None = None,
        on_clause: Callable[[Reply, ClauseItem], None] | None = None,
        on_first_chunk: Callable[[Reply, ClauseItem, float], None] | None = None,
        on_render: Callable[[Reply, ClauseItem, float, float, bool], None] | None = None,
    ):
        self.reply_id = 0  # assigned when it is opened (speculative replies have no id yet)
        self.turn_id = turn_id
        self.kind = kind
        self.required_text = required_text
        self.speculative = speculative
        self.timeline = Timeline()
        self.ctx = context or ReplyContext()
        self.cancelled = False
        self.interrupted = False
        # Fixed text the host asked for (VoiceSession.say): no turn telemetry, and speech over
        # it interrupts it only if ``interruptible``.
        self.said = False
        self.interruptible = True
        self.items_sent = 0
        self._source = source
        self._speaker = speaker
        self._put = put
        self._clock = clock
        self._on_clause = on_clause
        self._on_first_chunk = on_first_chunk
        self._on_render = on_render
        self._gate = asyncio.Event()
        self._renders: asyncio.Queue[tuple[ClauseItem, asyncio.Task] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self.finished: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.error: BaseException | None = None

    # --- control ------------------------------------------------------------------------

    def start(self) -> Reply:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._produce(), name="reply-produce"),
            loop.create_task(self._send(), name="reply-send"),
        ]
        return self

    @property
    def fallback_used(self) -> bool:
        return self.ctx.fallback_used

    @property
    def is_open(self) -> bool:
        return self._gate.is_set()

    def open(self, reply_id: int) -> None:
        self.reply_id = reply_id
        self.speculative = False
        self._gate.set()

    def cancel(self) -> None:
        """Stop generation, synthesis and sending now; nothing more reaches the outbox."""
        if self.cancelled:
            return
        self.cancelled = True
        if self.ctx.guarded is not None:
            self.ctx.guarded.cancel()
        for t in self._tasks:
            t.cancel()
        while not self._renders.empty():
            item = self._renders.get_nowait()
            if item is not None:
                item[1].cancel()
        if not self.finished.done():
            self.finished.set_result(False)

    # --- tasks --------------------------------------------------------------------------

    async def _produce(self) -> None:
        try:
            async for item in self._source:
                if self.cancelled:
                    return
                task = asyncio.get_running_loop().create_task(self._render(item))
                await self._renders.put((item, task))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported by the session; what was produced still plays
            self.error = exc
            log.exception("reply source failed")
        finally:
            if not self.cancelled:
                await self._renders.put(None)

    async def _render(self, item: ClauseItem) -> bytes:
        t0 = self._clock()
        pcm, cached = await self._speaker.render(item.text)
        if item.role == "ack":
            # (a calm speaker's deliberate pause after each clause is kept: voice/prosody.py)
            calm_ms = self._speaker.prosody.clause_pause_ms
            pcm = trim_trailing_silence(pcm, self._speaker.out_rate, max(ACK_GAP_MS, calm_ms))
        if self._on_render is not None:
            self._on_render(self, item, t0, self._clock(), cached)
        return pcm

    async def _send(self) -> None:
        rate = self._speaker.out_rate
        try:
            while True:
                entry = await self._renders.get()
                if entry is None:
                    break
                item, task = entry
                pcm = await task
                await self._gate.wait()
                if self.cancelled:
                    return
                index = self.items_sent
                self.items_sent += 1
                clause = ClauseAudio(index, item.text, item.source, self.timeline.sent_ms)
                self.timeline.clauses.append(clause)
                if item.source == "fallback":
                    self.ctx.fallback_used = True
                if self._on_clause is not None:
                    self._on_clause(self, item)
                self._put(
                    AgentText(
                        self.reply_id, index, item.text, item.source, self._clock(), item.carries_prompt
                    )
                )
                for i, chunk in enumerate(chunk_pcm(pcm, rate, self._speaker.chunk_ms)):
                    if self.cancelled:
                        return
                    ms = pcm_ms(chunk, rate)
                    now = self._clock()
                    if i == 0 and self._on_first_chunk is not None:
                        self._on_first_chunk(self, item, now)
                    self._put(AgentAudio(self.reply_id, index, chunk, rate, now))
                    clause.dur_ms += ms
                    self.timeline.sent_ms += ms
                    await asyncio.sleep(0)  # a barge-in can land between two chunks
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = exc
            log.exception("reply synthesis failed")
        finally:
            if not self.finished.done():
                self.finished.set_result(not self.cancelled)
