"""A benchmark caller that reconnects as the browser does (docs/protocol.md §5).

The socket-level benchmark's ``CallClient`` (a microphone in real time, a modelled speaker,
``playback`` reports), plus ``call-connection.js``'s reconnect: after a drop it retries with
backoff (0.25 s, 0.5 s, 1 s, 2 s, then every 4 s) until 60 s after the drop, through refusals
such as ``call_elsewhere`` (4421, the dead owner's lease has not expired yet; never waiting
past the ``retry_ms`` it carries, when the lease lapses). Each gap is kept:
when the socket dropped, when ``ready`` came back and from which node, and when the first audio
of the resumed call ("Sorry, we were cut off." and the question) arrived.

A call resumed on another node starts a new pipeline whose reply ids start again, so the
replies and the speaker of the first node are set aside at that point.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from evals.triage.bench_socket.client import CallClient
from evals.triage.bench_socket.playback import Player

BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0)
GIVE_UP_S = 60.0


@dataclass
class Gap:
    node: str  # the node the socket was on
    dropped_at: float
    close_code: int | None
    attempts: int = 0
    refusals: list[str] = field(default_factory=list)  # error codes of refused reconnects
    ready_at: float | None = None
    ready_node: str | None = None
    resumed_same_call: bool | None = None  # ready.resumed: the same pipeline (same node)
    first_audio_at: float | None = None  # first audio of the call after the gap

    def to_dict(self) -> dict[str, Any]:
        def ms(t):
            return None if t is None else round((t - self.dropped_at) * 1000.0, 1)

        return {
            "node": self.node,
            "ready_node": self.ready_node,
            "close_code": self.close_code,
            "attempts": self.attempts,
            "refusals": self.refusals,
            "ready_ms": ms(self.ready_at),
            "heard_ms": ms(self.first_audio_at),
            "resumed_same_pipeline": self.resumed_same_call,
        }


class ClusterCaller(CallClient):
    def __init__(self, base_url: str, *, seed: int = 0):
        super().__init__(base_url, seed=seed)
        self.up = asyncio.Event()
        self.nodes: list[str] = []  # the node of every ready
        self.gaps: list[Gap] = []
        self.finals: list[tuple[int, str]] = []  # (turn id, text) of every final transcript
        self.earlier_replies: list[dict] = []  # replies of a pipeline left behind on a dead node
        self.ended = False
        self.gave_up = False
        self.retry_by: float | None = None  # a 4421's retry_ms (s): the owner's lease lapses then

    async def start(self, **kwargs) -> bool:
        if not await super().start(**kwargs):
            raise RuntimeError("no ready")
        return True

    def _is_ready(self) -> bool:
        return self.up.is_set()

    @property
    def node(self) -> str | None:
        return self.nodes[-1] if self.nodes else None

    # --- the socket, reconnected --------------------------------------------------------------
    async def _receive(self) -> None:
        import websockets

        attempt = 0
        while True:
            try:
                async for data in self._ws:
                    self._on_frame(data)
            except websockets.ConnectionClosed:
                pass
            if self.closed or self.ended:
                return
            if self.up.is_set():  # a live call lost its socket: a gap begins
                self.up.clear()
                self.gaps.append(Gap(self.node or "", self.clock(), self._ws.close_code))
                attempt = 0
            gap = self.gaps[-1] if self.gaps else None
            if gap is not None and self.clock() - gap.dropped_at > GIVE_UP_S:
                self.gave_up = True
                self._changed.set()
                return
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            if self.retry_by is not None and self._ws.close_code == 4421:
                delay = min(delay, self.retry_by + 0.1)
            self.retry_by = None
            await asyncio.sleep(delay)
            attempt += 1
            if gap is not None:
                gap.attempts += 1
            try:
                self._ws = await self._connect()
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                continue  # the balancer has no node for it yet (503) or refused the handshake

    def _on_message(self, m: dict, now: float) -> None:
        kind = m.get("type")
        gap = self.gaps[-1] if self.gaps and self.gaps[-1].ready_at is None else None
        if kind == "ready":
            if gap is not None:
                gap.ready_at, gap.ready_node, gap.resumed_same_call = (
                    now,
                    m.get("node"),
                    bool(m.get("resumed")),
                )
                if not m.get("resumed"):  # a new pipeline (another node): its reply ids start again
                    self.earlier_replies.append({rid: r.texts for rid, r in self.replies.items()})
                    self.replies, self.player = {}, Player()
            self.nodes.append(m.get("node") or "")
            self.up.set()
        elif kind == "transcript" and m.get("final"):
            self.finals.append((int(m.get("turn_id", -1)), str(m.get("text", ""))))
        elif kind == "ended":
            self.ended = True
        elif kind == "error" and m.get("fatal") and gap is not None:
            gap.refusals.append(str(m.get("code")))
            if isinstance(m.get("retry_ms"), int):
                self.retry_by = m["retry_ms"] / 1000.0
        super()._on_message(m, now)

    def _on_frame(self, data) -> None:
        super()._on_frame(data)
        if isinstance(data, bytes) and self.gaps:
            gap = self.gaps[-1]
            if gap.ready_at is not None and gap.first_audio_at is None:
                gap.first_audio_at = self.clock()

    # --- microphone and reports: only while a socket is up -------------------------------------
    async def _microphone(self) -> None:
        while not self.closed:
            try:
                await self.up.wait()
                await self._capture()
            except asyncio.CancelledError:
                raise
            except Exception:  # the socket went: what was being said is lost, as in a browser
                if self._current is not None:
                    self._current.done.set()
                await asyncio.sleep(0.02)

    def _send_json(self, message: dict) -> None:
        ws = self._ws

        async def send() -> None:
            try:
                await ws.send(json.dumps(message))
            except Exception:  # a report for a socket that has gone: the browser loses it too
                pass

        asyncio.get_running_loop().create_task(send())

    async def resumed_reply_played(self, timeout: float) -> bool:
        """After a gap: the first reply of the resumed call has played to the end."""

        def played() -> bool:
            if not self.up.is_set() or not self.replies:
                return False
            first = min(self.replies)
            return self.player.reply(first).reported or self.replies[first].interrupted

        return await self.wait(played, timeout)
