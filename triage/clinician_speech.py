"""The clinician's words during a hand-off, as clinician turns in the transcript.

The clinician's 16 kHz microphone frames are cut into utterances with webrtcvad (an utterance
ends after ``END_SILENCE_MS`` of non-speech), each decoded by the call's own Whisper recognizer
in a worker thread (never on the event loop), then stored like the other turns: an audit event
and a ``turn.record`` outbox message (speaker ``clinician``) in one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

import numpy as np
import webrtcvad
from django.db import IntegrityError, transaction

from . import outbox
from .audit import append_event
from .models import AuditEvent, Turn
from .services import _iso, _reserve_turn_index

logger = logging.getLogger(__name__)

RATE = 16000
FRAME_BYTES = RATE // 50 * 2  # 20 ms of s16le
END_SILENCE_MS = 600
MIN_SPEECH_MS = 300
MAX_UTTERANCE_MS = 15000


def record_clinician_turn(
    session_id, text: str, username: str, started: dt.datetime, ended: dt.datetime, key: str
) -> int | None:
    """Audit the clinician's words and queue the Turn row (speaker ``clinician``), atomically."""
    try:
        with transaction.atomic():
            index = _reserve_turn_index(session_id)
            append_event(
                session_id,
                AuditEvent.Kind.CLINICIAN_TURN,
                {"turn_index": index, "text": text, "by": username},
                actor=f"clinician:{username}",
            )
            outbox.enqueue(
                "turn.record",
                key,
                {
                    "session_id": str(session_id),
                    "index": index,
                    "speaker": Turn.Speaker.CLINICIAN.value,
                    "text": text,
                    "started_at": _iso(started),
                    "ended_at": _iso(ended),
                },
            )
            return index
    except IntegrityError:
        return None


Decode = Callable[[np.ndarray], str]
OnText = Callable[[str, dt.datetime, dt.datetime], Awaitable[None]]


class ClinicianTranscriber:
    """Feed 16 kHz frames; ``on_text`` gets each utterance's words with its wall-clock span."""

    def __init__(self, decode: Decode, on_text: OnText, aggressiveness: int = 2):
        self._decode = decode
        self._on_text = on_text
        self._vad = webrtcvad.Vad(aggressiveness)
        self._pending = b""
        self._speech: list[bytes] = []
        self._voiced_ms = 0
        self._silence_ms = 0
        self._started: dt.datetime | None = None
        # Times come from the audio's position after the first frame (the mic's own clock).
        self._origin: dt.datetime | None = None
        self._frames_seen = 0
        self._tasks: set[asyncio.Task] = set()
        self._last: asyncio.Task | None = None  # the previous utterance's decode

    def feed(self, pcm: bytes) -> None:
        if self._origin is None:
            self._origin = dt.datetime.now(dt.UTC)
        self._pending += pcm
        while len(self._pending) >= FRAME_BYTES:
            frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        voiced = self._vad.is_speech(frame, RATE)
        self._frames_seen += 1
        if voiced and not self._speech:
            self._started = self._origin + dt.timedelta(milliseconds=20 * (self._frames_seen - 1))
        if self._speech or voiced:
            self._speech.append(frame)
            self._voiced_ms += 20 if voiced else 0
            self._silence_ms = 0 if voiced else self._silence_ms + 20
            if self._silence_ms >= END_SILENCE_MS or len(self._speech) * 20 >= MAX_UTTERANCE_MS:
                self._cut()

    def _cut(self) -> None:
        speech, voiced_ms, started = self._speech, self._voiced_ms, self._started
        self._speech, self._voiced_ms, self._silence_ms, self._started = [], 0, 0, None
        if voiced_ms < MIN_SPEECH_MS or started is None:
            return
        task = asyncio.ensure_future(self._transcribe(b"".join(speech), started, self._last))
        self._last = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _transcribe(self, pcm: bytes, started: dt.datetime, previous: asyncio.Task | None) -> None:
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        try:
            text = (await asyncio.to_thread(self._decode, audio)).strip()
        except Exception:
            logger.exception("clinician speech could not be transcribed")
            text = ""
        # Decodes run side by side, but turns are recorded in the order they were said: a short
        # second utterance can finish decoding before a long first one (seen under CI load).
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if text:
            await self._on_text(text, started, started + dt.timedelta(seconds=len(pcm) / 2 / RATE))

    async def close(self) -> None:
        """The microphone closed: decode what was said last, and wait for every decode."""
        self._cut()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def new_key(session_id) -> str:
    return f"clinician:{session_id}:{uuid.uuid4().hex}"
