"""The browser's playback of agent audio, modelled on the client's clock.

One queue played at real-time speed (``playback-worklet.js``): audio of every reply plays in
arrival order, back to back. ``pause`` holds it (the buffer is kept), ``resume`` plays on from
the same sample, ``interrupt`` flushes everything. A reply whose ``agent_reply_end`` has come
and whose audio has all played is *done*: the client then reports it (``playback``), as
``intake.js`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Chunk:
    start: float  # client clock, seconds
    dur: float
    offset_ms: float  # where it starts in its reply's audio


@dataclass
class ReplyPlayback:
    reply_id: int
    chunks: list[Chunk] = field(default_factory=list)
    received_ms: float = 0.0
    complete: bool = False  # agent_reply_end received
    flushed: bool = False  # cut by an interrupt
    reported: bool = False

    def played_ms(self, now: float) -> float:
        return sum(min(max(0.0, now - c.start), c.dur) for c in self.chunks) * 1000.0

    def end(self) -> float:
        return max((c.start + c.dur for c in self.chunks), default=0.0)

    def time_at(self, offset_ms: float) -> float | None:
        """When playback reaches ``offset_ms`` of this reply's audio (None: it never does)."""
        for c in self.chunks:
            if c.offset_ms - 0.5 <= offset_ms < c.offset_ms + c.dur * 1000.0:
                return c.start + (offset_ms - c.offset_ms) / 1000.0
        return None


class Player:
    def __init__(self) -> None:
        self.replies: dict[int, ReplyPlayback] = {}
        self._queue_end = 0.0
        self._held_at: float | None = None

    @property
    def held(self) -> bool:
        return self._held_at is not None

    def reply(self, reply_id: int) -> ReplyPlayback:
        return self.replies.setdefault(reply_id, ReplyPlayback(reply_id))

    def audio(self, reply_id: int, ms: float, now: float) -> None:
        p = self.reply(reply_id)
        if p.flushed:
            return  # late frames of a flushed reply are dropped, as the browser does
        start = max(now, self._queue_end)
        if self._held_at is not None:
            start = max(self._queue_end, self._held_at)  # queued behind the hold
        p.chunks.append(Chunk(start, ms / 1000.0, p.received_ms))
        p.received_ms += ms
        self._queue_end = start + ms / 1000.0

    def complete(self, reply_id: int) -> None:
        self.reply(reply_id).complete = True

    def hold(self, now: float) -> None:
        if self._held_at is None:
            self._held_at = now

    def release(self, now: float) -> None:
        held_at, self._held_at = self._held_at, None
        if held_at is None:
            return
        delta = max(0.0, now - held_at)
        for p in self.replies.values():
            if p.flushed:
                continue
            shifted: list[Chunk] = []
            for c in p.chunks:
                if c.start >= held_at:
                    shifted.append(Chunk(c.start + delta, c.dur, c.offset_ms))
                elif c.start + c.dur > held_at:  # split the chunk that was playing
                    first = held_at - c.start
                    shifted.append(Chunk(c.start, first, c.offset_ms))
                    shifted.append(Chunk(held_at + delta, c.dur - first, c.offset_ms + first * 1000.0))
                else:
                    shifted.append(c)
            p.chunks = shifted
        if self._queue_end > held_at:
            self._queue_end += delta

    def flush(self, now: float) -> dict[int, float]:
        """``interrupt``: stop now (or where a hold stopped it); returns played ms per reply cut."""
        stop = now if self._held_at is None else min(self._held_at, now)
        self._held_at = None
        cut: dict[int, float] = {}
        for p in self.replies.values():
            if p.flushed or p.reported or p.end() <= stop:
                continue
            p.chunks = [Chunk(c.start, min(c.dur, max(0.0, stop - c.start)), c.offset_ms) for c in p.chunks]
            p.flushed = True
            cut[p.reply_id] = p.played_ms(stop)
        self._queue_end = min(self._queue_end, stop)
        return cut

    def playing(self, now: float) -> bool:
        return self._held_at is not None or self._queue_end > now

    def done(self, now: float) -> list[ReplyPlayback]:
        """Replies that are complete and fully played but not reported yet (marks them reported)."""
        out = []
        for p in self.replies.values():
            if p.complete and not p.reported and not p.flushed and self._held_at is None and p.end() <= now:
                p.reported = True
                out.append(p)
        return out
