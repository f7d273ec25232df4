"""What a waiting caller hears and sees: fixed text, never generated (docs/protocol.md, "Waiting
for a line").

The emergency advice has the greeting's words and the rule set's emergency number, so a caller
told to wait is told first how to get help now. Spoken from the shared phrase cache (Piper), the
same way the host speaks the clinician hand-over (triage/live.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from triage import protocol as proto
from voice.llm.chunker import split_clauses

logger = logging.getLogger(__name__)

BUSY = (
    "All our lines are busy right now. You are number {position} in the queue, and you will be "
    "connected automatically as soon as a line is free. Please stay on the line."
)
MOVED_UP = "You are now number {position} in the queue."
EMERGENCY = "If this is a life-threatening emergency, hang up and call {emergency_number} now."
REPEAT_S = 60.0  # a caller still waiting hears the busy message and the advice again this often

# Reply ids of what the waiting line says: clear of the pipeline's and the hand-over's (0xFFFF0000).
QUEUE_REPLY_IDS = 0xFFFE0000
_reply_ids = itertools.count(QUEUE_REPLY_IDS)
FRAME_BYTES = 9600  # 200-300 ms per frame at the usual output rates

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]


def emergency_text() -> str:
    from clinical_rules import load_ruleset

    return EMERGENCY.format(emergency_number=load_ruleset().emergency_number)


def busy_text(position: int) -> str:
    return BUSY.format(position=position)


def moved_up_text(position: int) -> str:
    return MOVED_UP.format(position=position)


def _synthesize(runtime, text: str) -> bytes:
    """Blocking (a thread): the phrase cache's audio for ``text``, synthesizing missing clauses."""
    clauses = split_clauses(text)
    missing = [c for c in clauses if runtime.phrases.get(c) is None]
    if missing:
        runtime.warm_phrases(missing)
    return b"".join(runtime.phrases.get(c) or b"" for c in clauses)


async def speak(runtime, text: str, send_json: SendJson, send_bytes: SendBytes) -> None:
    """One reply of kind ``queue``: its start, its words, its audio, its end (as the pipeline's)."""
    from triage.live import audio_frame

    reply_id = next(_reply_ids)
    pcm = b""
    if runtime is not None:
        try:
            pcm = await asyncio.to_thread(_synthesize, runtime, text)
        except Exception:  # the words are on screen; the caller just does not hear them
            logger.exception("could not synthesise the waiting-line message")
    await send_json(proto.AgentReplyStart(reply_id, "queue").to_dict())
    await send_json(proto.AgentText(reply_id, 0, text, answer=True).to_dict())
    for i in range(0, len(pcm), FRAME_BYTES):
        await send_bytes(audio_frame(reply_id, pcm[i : i + FRAME_BYTES]))
    await send_json(proto.AgentReplyEnd(reply_id, interrupted=False).to_dict())
