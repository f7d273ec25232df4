"""One caller, as the browser is one: the HTTP API, the patient WebSocket, a microphone, a speaker.

* ``POST /api/sessions`` (with the CSRF cookie, like the intake page), then
  ``/ws/patient/<token>/`` with an allowed ``Origin``.
* The microphone sends a 20 ms frame every 20 ms on an absolute monotonic schedule (frame i
  leaves when its capture ends, t0 + (i+1)·20 ms): queued speech when there is some, else an
  open microphone's low noise.
* The speaker is ``Player`` (the browser's playback), fed by the binary frames; ``pause``,
  ``resume`` and ``interrupt`` act on it, and ``playback`` reports go back as ``intake.js``
  sends them (a reply fully played after its ``agent_reply_end``; what played of a reply cut
  by ``interrupt``).

Every server message is logged with its arrival time; the scenarios read the log.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .playback import Player
from .speech import FRAME_MS, RATE, Utterance, comfort_noise


@dataclass
class Spoken:
    """When an utterance went out: send time of its first frame and of its speech end."""

    utterance: Utterance
    queued_at: float
    first_frame_at: float | None = None
    speech_start_at: float | None = None
    speech_end_at: float | None = None
    marks_ms: tuple[float, ...] = ()  # offsets in the audio whose capture time is wanted
    mark_at: dict[float, float] = field(default_factory=dict)  # offset -> when it was captured
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ReplyLog:
    reply_id: int
    kind: str = ""
    started_at: float | None = None  # agent_reply_start arrival
    first_audio_at: float | None = None
    answer_offset_ms: float | None = None  # where the answer clause starts in the reply's audio
    answer_audio_at: float | None = None
    ended_at: float | None = None
    interrupted: bool = False
    texts: list[str] = field(default_factory=list)
    pause_at: float | None = None
    resume_at: float | None = None
    interrupt_at: float | None = None


class HttpSession:
    """Blocking HTTP with a cookie jar (run in a thread: never on the event loop)."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def csrf(self, path: str = "/") -> str:
        self.request("GET", path)
        token = self.cookie("csrftoken")
        if not token:
            raise RuntimeError(f"no csrftoken cookie from GET {path}")
        return token

    def post_json(self, path: str, payload: dict) -> tuple[int, dict]:
        token = self.csrf("/")
        status, body = self.request(
            "POST",
            path,
            json.dumps(payload).encode(),
            {
                "Content-Type": "application/json",
                "X-CSRFToken": token,
                "Origin": self.base,
                "Referer": self.base + "/",
            },
        )
        return status, json.loads(body or b"{}")

    def login(self, username: str, password: str) -> str:
        """Clinician login through the real form; returns the session cookie."""
        token = self.csrf("/accounts/login/")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        self.request(
            "POST",
            "/accounts/login/",
            form.encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.base,
                "Referer": self.base + "/",
            },
        )
        sid = self.cookie("sessionid")
        if not sid:
            raise RuntimeError("clinician login failed (no session cookie)")
        return sid


def ws_url(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}"


class CallClient:
    def __init__(self, base_url: str, *, seed: int = 0, clock=time.monotonic):
        self.base = base_url.rstrip("/")
        self.clock = clock
        self.seed = seed
        self.player = Player()
        self.replies: dict[int, ReplyLog] = {}
        self.log: list[tuple[float, dict[str, Any]]] = []
        self.state = "idle"
        self.session_id: str | None = None
        self.path = ""  # the session's socket path
        self.errors: list[dict] = []
        self._ws = None
        self._speech: deque[tuple[Spoken, list[bytes]]] = deque()
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()
        self._noise = comfort_noise(500, seed=seed)
        self._current: Spoken | None = None
        self.closed = False

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(
        self, *, subject: str = "self", age_band: str = "18_to_64", ready_timeout: float = 300
    ) -> bool:
        """Create the session, open its socket, start listening and speaking; True once ready."""
        http = HttpSession(self.base)
        status, body = await asyncio.to_thread(
            http.post_json, "/api/sessions", {"consent": True, "subject": subject, "age_band": age_band}
        )
        if status != 201:
            raise RuntimeError(f"POST /api/sessions: {status} {body}")
        self.session_id, self.path = body["session_id"], body["websocket"]
        self._ws = await self._connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._receive()), loop.create_task(self._microphone())]
        return await self.wait(self._is_ready, ready_timeout)

    async def _connect(self):
        import websockets

        return await websockets.connect(
            ws_url(self.base, self.path), origin=self.base, max_size=2**20, open_timeout=30
        )

    def _is_ready(self) -> bool:
        return any(m.get("type") == "ready" for _, m in self.log)

    async def end(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._ws.send(json.dumps({"type": "end"}))
            await self.wait(lambda: any(m.get("type") == "ended" for _, m in self.log), 10)
        except Exception:
            pass
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._ws.close()
        except Exception:
            pass

    # --- microphone ----------------------------------------------------------------------------
    def speak(self, utt: Utterance, marks_ms: tuple[float, ...] = ()) -> Spoken:
        spoken = Spoken(utt, self.clock(), marks_ms=marks_ms)
        self._speech.append((spoken, utt.frames))
        return spoken

    async def _microphone(self) -> None:
        try:
            await self._capture()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # socket gone: whoever waits for speech must not hang
            self.errors.append({"code": "microphone", "message": repr(exc)})
            for spoken, _ in self._speech:
                spoken.done.set()
            if self._current is not None:
                self._current.done.set()

    async def _capture(self) -> None:
        frame_s = FRAME_MS / 1000.0
        t0 = self.clock()
        i = 0
        current: tuple[Spoken, list[bytes], int] | None = None
        while True:
            i += 1
            delay = t0 + i * frame_s - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if current is None and self._speech:
                spoken, frames = self._speech.popleft()
                current = (spoken, frames, 0)
            self._current = current[0] if current is not None else None
            if current is not None:
                spoken, frames, k = current
                frame = frames[k]
            else:
                frame = self._noise[i % len(self._noise)]
            await self._ws.send(frame)
            now = self.clock()
            self._tick(now)
            if current is None:
                continue
            # Frame k held the audio [k·20, (k+1)·20) ms; it leaves when its capture ends.
            frame_end_ms = (k + 1) * FRAME_MS
            if k == 0:
                spoken.first_frame_at = now - frame_s
            u = spoken.utterance
            if spoken.speech_start_at is None and frame_end_ms >= u.speech_start_ms:
                spoken.speech_start_at = now - (frame_end_ms - u.speech_start_ms) / 1000.0
            if spoken.speech_end_at is None and frame_end_ms >= u.speech_end_ms:
                spoken.speech_end_at = now - (frame_end_ms - u.speech_end_ms) / 1000.0
            for mark in spoken.marks_ms:
                if mark not in spoken.mark_at and frame_end_ms >= mark:
                    spoken.mark_at[mark] = now - (frame_end_ms - mark) / 1000.0
            if k + 1 >= len(frames):
                spoken.done.set()
                current = None
            else:
                current = (spoken, frames, k + 1)

    async def spoken(self, spoken: Spoken) -> None:
        """Wait until ``spoken`` has gone out (bounded: its length plus 30 s)."""
        limit = len(spoken.utterance.pcm) / 2 / RATE + 30.0
        await asyncio.wait_for(spoken.done.wait(), limit)

    def _tick(self, now: float) -> None:
        """Per frame: replies that finished playing are reported, as the browser does."""
        for p in self.player.done(now):
            self._send_json(
                {"type": "playback", "reply_id": p.reply_id, "played_ms": round(p.received_ms, 1)}
            )

    def _send_json(self, message: dict) -> None:
        asyncio.get_running_loop().create_task(self._ws.send(json.dumps(message)))

    # --- speaker and events ------------------------------------------------------------------
    def reply(self, reply_id: int) -> ReplyLog:
        return self.replies.setdefault(reply_id, ReplyLog(reply_id))

    async def _receive(self) -> None:
        async for data in self._ws:
            self._on_frame(data)

    def _on_frame(self, data: bytes | str) -> None:
        """One frame from the server: agent audio to the speaker, a message to the log."""
        now = self.clock()
        if isinstance(data, bytes):
            (reply_id,) = struct.unpack_from("<I", data)
            ms = (len(data) - 4) / 2 / self.out_rate * 1000.0
            r = self.reply(reply_id)
            if r.first_audio_at is None:
                r.first_audio_at = now
            p = self.player.reply(reply_id)
            if (
                r.answer_offset_ms is not None
                and r.answer_audio_at is None
                and p.received_ms >= r.answer_offset_ms
            ):
                r.answer_audio_at = now
            self.player.audio(reply_id, ms, now)
        else:
            message = json.loads(data)
            self.log.append((now, message))
            self._on_message(message, now)
        self._changed.set()

    @property
    def out_rate(self) -> int:
        for _, m in self.log:
            if m.get("type") == "ready":
                return int(m["output"]["sample_rate"])
        return RATE

    def _on_message(self, m: dict, now: float) -> None:
        kind = m.get("type")
        if kind == "state":
            self.state = m["state"]
        elif kind == "agent_reply_start":
            r = self.reply(m["reply_id"])
            r.kind, r.started_at = m.get("kind", ""), now
        elif kind == "agent_text":
            r = self.reply(m["reply_id"])
            r.texts.append(m.get("text", ""))
            # The clause carrying the question / disposition / script (protocol field `answer`).
            if m.get("answer") and r.answer_offset_ms is None:
                r.answer_offset_ms = self.player.reply(r.reply_id).received_ms
        elif kind == "agent_reply_end":
            r = self.reply(m["reply_id"])
            r.ended_at, r.interrupted = now, bool(m.get("interrupted"))
            self.player.complete(r.reply_id)
        elif kind == "pause":
            self.reply(m["reply_id"]).pause_at = now
            self.player.hold(now)
        elif kind == "resume":
            self.reply(m["reply_id"]).resume_at = now
            self.player.release(now)
        elif kind == "interrupt":
            self.reply(m["reply_id"]).interrupt_at = now
            cut = self.player.flush(now)
            cut.setdefault(m["reply_id"], self.player.reply(m["reply_id"]).played_ms(now))
            for reply_id, played in cut.items():
                self._send_json({"type": "playback", "reply_id": reply_id, "played_ms": round(played, 1)})
        elif kind == "error":
            self.errors.append(m)

    async def wait(self, predicate, timeout: float) -> bool:
        """Until ``predicate()`` holds (re-checked on every message and every 20 ms)."""
        deadline = self.clock() + timeout
        while not predicate():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.02))
            except TimeoutError:
                pass
        return True

    def heard_at(self, reply_id: int, offset_ms: float) -> float | None:
        """When the modelled playback reached ``offset_ms`` of reply ``reply_id``."""
        p = self.player.replies.get(reply_id)
        return None if p is None else p.time_at(offset_ms)

    def playing(self) -> bool:
        return self.player.playing(self.clock())
