"""Listen-in taps on a live call (issue 13 part 1): what the patient says and what the patient
hears, copied to clinician sockets in this process, without the patient hearing anything back.

A LiveCall calls :func:`patient_audio`, :func:`agent_audio` and :func:`call_event` on its own
path; each costs a dict lookup when nobody listens. A listener's queue is bounded and drops its
oldest frame when full, so a slow clinician socket never delays the patient's audio.

Binary frames to the clinician (``ws/clinician/calls/<id>/listen/``): a 4-byte header
``<BxH`` (source: 0 patient, 1 agent, 2 the clinician talking to the patient; sample rate in
Hz), then s16le mono PCM. The clinician who talks gets no frames of source 2: their own voice
played back to them would be an echo.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import Any

PATIENT, AGENT, CLINICIAN = 0, 1, 2
PATIENT_RATE = 16000  # the patient page's capture rate (capture-worklet.js)
HEADER = struct.Struct("<BxH")
QUEUE_FRAMES = 250  # about 5 s of 20 ms frames; more than that behind and the oldest go


@dataclass(frozen=True)
class TapAudio:
    source: int
    pcm: bytes
    rate: int

    def frame(self) -> bytes:
        return HEADER.pack(self.source, self.rate) + self.pcm


@dataclass(frozen=True)
class TapEvent:
    """What the patient's page was told (transcript, agent text, state, escalation)."""

    message: dict[str, Any]


@dataclass(eq=False)
class Listener:
    session_id: str
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=QUEUE_FRAMES))
    dropped: int = 0
    skip: frozenset[int] = frozenset()  # audio sources this listener does not get

    def offer(self, item: TapAudio | TapEvent | None) -> None:
        if isinstance(item, TapAudio) and item.source in self.skip:
            return
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1


_listeners: dict[str, set[Listener]] = {}


def add(session_id: str, skip: frozenset[int] = frozenset()) -> Listener:
    listener = Listener(session_id, skip=skip)
    _listeners.setdefault(session_id, set()).add(listener)
    return listener


def remove(listener: Listener) -> None:
    group = _listeners.get(listener.session_id)
    if group is not None:
        group.discard(listener)
        if not group:
            _listeners.pop(listener.session_id, None)


def count(session_id: str) -> int:
    return len(_listeners.get(session_id, ()))


def _offer(session_id: str, item: TapAudio | TapEvent | None) -> None:
    for listener in tuple(_listeners.get(session_id, ())):
        listener.offer(item)


def patient_audio(session_id: str, pcm: bytes) -> None:
    if session_id in _listeners:
        _offer(session_id, TapAudio(PATIENT, pcm, PATIENT_RATE))


def agent_audio(session_id: str, pcm: bytes, rate: int) -> None:
    if session_id in _listeners:
        _offer(session_id, TapAudio(AGENT, pcm, rate))


def clinician_audio(session_id: str, pcm: bytes, rate: int) -> None:
    """The clinician's voice as the patient hears it (for other clinicians listening in)."""
    if session_id in _listeners:
        _offer(session_id, TapAudio(CLINICIAN, pcm, rate))


def call_event(session_id: str, message: dict[str, Any] | None) -> None:
    if message is not None and session_id in _listeners:
        _offer(session_id, TapEvent(message))


def call_ended(session_id: str) -> None:
    """The call is over: every listener's socket is closed (None ends its sender)."""
    _offer(session_id, None)
