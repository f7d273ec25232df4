"""The clinician's voice on the call, on the node that holds the call (issue 13 part 2).

One ``ClinicianVoice`` per talk socket, whichever node the socket landed on (the socket reaches
it in-process or through the relay, triage/call_link.py): it attaches to the LiveCall's
clinician reply, turns the 16 kHz microphone frames into the patient's playback rate, has the
call's recognizer transcribe them as clinician turns (with captions to the patient and to
listeners), and on close decides between a reconnect grace and the lost-clinician fallback.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from . import clinician_speech, handoff, listen

if TYPE_CHECKING:
    from .live import LiveCall

TAKE_OVER_WAIT_S = 5.0  # the take-over reaches the call over the channel layer, after the POST
NOTICE_WAIT_MAX_S = 15.0
NOTICE_MARGIN_S = 0.15  # the notice's last frames still in the patient's network path and buffer
CLOSE_ACCESS_REVOKED = 4401  # the login lost access: no reconnect grace


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a clinician socket cannot have the call: sent as an ``error`` and a 44xx close."""

    code: int
    error: str
    message: str


NOT_TAKEN_OVER = Refusal(4404, "not_taken_over", "The call did not hand over; try again.")


class ClinicianVoice:
    def __init__(self, call: LiveCall, username: str):
        self.call = call
        self.username = username
        self.reply_id: int | None = None
        self.transcriber: clinician_speech.ClinicianTranscriber | None = None
        self.started = time.monotonic()

    async def start(self) -> dict | Refusal:
        """Attach to the call's clinician reply (the same one again within the reconnect grace)
        once the take-over has reached the call and the patient has heard its notice; returns
        what ``talk_ready`` tells the page."""
        call = self.call
        deadline = time.monotonic() + TAKE_OVER_WAIT_S
        while call.taken_over_by is None and not call.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        attached = await call.clinician_attach()
        if attached is None:
            return NOT_TAKEN_OVER
        self.reply_id, resumed = attached
        # The patient is still hearing the take-over notice: the clinician's voice starts when it
        # ends (frames before talk_ready are ignored), else it would queue behind the notice in
        # the patient's playback and stay that much late (measured: ~380 ms) for the whole call.
        notice_left = min(NOTICE_WAIT_MAX_S, call.host_audio_until + NOTICE_MARGIN_S - time.monotonic())
        if notice_left > 0:
            await asyncio.sleep(notice_left)
        self.started = time.monotonic()
        voice = call.voice
        agent_rate = int(voice.config.output_sample_rate) if voice is not None else listen.PATIENT_RATE
        self.resample = handoff.LinearResampler(clinician_speech.RATE, agent_rate)
        recognizer = getattr(getattr(voice, "runtime", None), "recognizer", None)
        if recognizer is not None:
            self.transcriber = clinician_speech.ClinicianTranscriber(
                lambda audio: recognizer.transcribe(audio).text, self._said
            )
        return {"agent_rate": agent_rate, "transcribed": self.transcriber is not None, "resumed": resumed}

    async def audio(self, pcm: bytes) -> None:
        """16 kHz s16le from the clinician's microphone (checked by the socket)."""
        if self.reply_id is None:
            return
        if self.transcriber is not None:
            self.transcriber.feed(pcm)
        await self.call.clinician_audio(self.reply_id, self.resample(pcm))

    async def _said(self, text: str, started, ended) -> None:
        session_id = self.call.session_id
        await database_sync_to_async(clinician_speech.record_clinician_turn)(
            session_id, text, self.username, started, ended, clinician_speech.new_key(session_id)
        )
        await self.call.clinician_said(text, self.username)

    def _lost(self, seconds: float):
        """The lost-clinician fallback for this clinician (run after the grace)."""
        call, username = self.call, self.username

        async def lost() -> None:
            if await database_sync_to_async(handoff.clinician_lost)(call.session_id, username, seconds):
                await call.hand_back(handoff.CLINICIAN_LOST_TEXT)

        return lost

    async def end(self, code: int | None) -> float | None:
        """The talk socket closed (``code``; None: its node stopped answering). Returns the
        reconnect grace when the call now waits for this clinician to come back."""
        if self.reply_id is None:
            return None
        self.reply_id = None
        seconds = time.monotonic() - self.started
        if self.transcriber is not None:
            await self.transcriber.close()
        if not self.call.clinician_detach():  # a reconnect already carries on with the reply
            return None
        # Still holding the call (no hand back, no close): the connection dropped. Wait for the
        # page to reconnect; after the grace the clinician is lost.
        holds = await database_sync_to_async(handoff.holds)(self.call.session_id, self.username)
        grace = 0.0 if code == CLOSE_ACCESS_REVOKED else handoff.CLINICIAN_RECONNECT_GRACE_SECONDS
        waiting = holds and grace > 0 and not self.call.ended
        await self.call.clinician_gone(holds, grace, self._lost(seconds))
        return grace if waiting else None
