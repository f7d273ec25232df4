"""A clinician socket's link to a live call, on this node or on another one (issue 13).

A call lives in the process that holds the patient's socket (triage/live.py); behind the
load balancer a clinician's listen or talk socket can land on any node. ``open_link`` gives
the socket the same interface either way:

* ``LocalLink``: the call is in this process; the tap (triage/listen.py) and the clinician's
  voice (triage/clinician_voice.py) are used directly;
* ``RemoteLink``: the call is on another node; the link is relayed over the channel layer
  (Redis, which the nodes already share). The socket's node asks the call's group
  (``call.link``); the call's node answers on the socket's reply channel with a channel of its
  own for this link, then forwards what the tap gives and feeds the clinician's microphone
  frames to the same ``ClinicianVoice`` a local socket would use, so audits, turns and the
  lost-clinician fallback are the same. Each side sends ``link.alive`` while it has nothing
  else to send; a side that hears nothing for ``PEER_TIMEOUT_S`` takes the other as gone
  (the talk socket's reconnect grace then applies, as for a dropped socket).

Messages: ``call.link`` (to the call's group); then on the two point-to-point channels
``link.accepted``, ``link.ready`` / ``link.refused``, ``link.audio``, ``link.event``,
``link.ended`` (the call ended), ``link.alive``, ``link.close`` and ``link.closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

from . import channel_groups, listen
from .clinician_voice import ClinicianVoice, Refusal

if TYPE_CHECKING:
    from .live import LiveCall

logger = logging.getLogger(__name__)

LISTEN, TALK = "listen", "talk"
ALIVE_S = 2.0  # a side with nothing to send says it is still there this often
PEER_TIMEOUT_S = 6.0  # three missed keep-alives: the other node (or its socket) is gone
ACCEPT_TIMEOUT_S = 3.0  # no node answered for the call: it is not live anywhere
READY_TIMEOUT_S = 30.0  # the call's node waits for the take-over and its notice first
CLOSED_TIMEOUT_S = 20.0  # the last utterance is transcribed before the close is answered

NOT_LIVE = Refusal(4404, "not_live", "This call is not live.")
LINK_LOST = object()  # queued to the socket when the call's node stops answering
_QUIET = object()


@dataclass(frozen=True, slots=True)
class Closed:
    grace: float | None  # the call waits this long for the clinician to come back
    dropped: int  # tap frames the socket never got (it lagged)


def _closed(grace: float | None, dropped: int) -> dict[str, Any]:
    return {"type": "link.closed", "grace": grace, "dropped": dropped}


# --- this node -----------------------------------------------------------------------------------
class LocalLink:
    def __init__(self, call: LiveCall, listener: listen.Listener, voice: ClinicianVoice | None, info: dict):
        self.call, self.listener, self.voice, self.info = call, listener, voice, info

    async def audio(self, pcm: bytes) -> None:
        if self.voice is not None:
            await self.voice.audio(pcm)

    async def close(self, code: int | None) -> Closed:
        listen.remove(self.listener)
        grace = await self.voice.end(code) if self.voice is not None else None
        return Closed(grace, self.listener.dropped)


async def _attach(call: LiveCall, mode: str, username: str, skip: frozenset[int]):
    """On the call's node: (listener, voice, info) for a new socket, or a Refusal."""
    voice = None
    if mode == TALK:
        voice = ClinicianVoice(call, username)
        started = await voice.start()
        if isinstance(started, Refusal):
            return started
        info = started
    else:
        info = {"agent_rate": int(call.voice.config.output_sample_rate) if call.voice is not None else 0}
    return listen.add(call.session_id, skip), voice, info


async def open_link(session_id: str, mode: str, username: str, skip: frozenset[int]):
    """A link to the live call, wherever it is, or a Refusal."""
    from .live import LiveCall  # live imports this module (it serves links)

    call = LiveCall.get(session_id)
    if call is not None and not call.ended:
        attached = await _attach(call, mode, username, skip)
        if isinstance(attached, Refusal):
            return attached
        return LocalLink(call, *attached)
    layer = get_channel_layer()
    if layer is None:
        return NOT_LIVE
    return await RemoteLink(layer, session_id).open(mode, username, skip)


# --- the call's node, serving a socket on another node --------------------------------------------
async def serve(call: LiveCall, request: dict) -> None:
    """Answer a ``call.link`` from another node and relay until either side closes."""
    layer = get_channel_layer()
    reply_to = str(request.get("reply_to") or "")
    mode = request.get("mode")
    if layer is None or not reply_to or mode not in (LISTEN, TALK):
        return
    inbox = await layer.new_channel()
    await layer.send(reply_to, {"type": "link.accepted", "inbox": inbox})
    skip = frozenset(int(s) for s in request.get("skip") or ())
    attached = NOT_LIVE if call.ended else await _attach(call, mode, str(request.get("username") or ""), skip)
    if isinstance(attached, Refusal):
        await layer.send(
            reply_to,
            {
                "type": "link.refused",
                "code": attached.code,
                "error": attached.error,
                "message": attached.message,
            },
        )
        return
    listener, voice, info = attached
    await layer.send(reply_to, {"type": "link.ready", "info": info})
    received: asyncio.Queue[dict] = asyncio.Queue()
    reader = asyncio.ensure_future(_read(layer, inbox, received))
    forwarder = asyncio.ensure_future(_forward(layer, listener, reply_to))
    code: int | None = None
    try:
        while True:
            try:
                message = await asyncio.wait_for(received.get(), PEER_TIMEOUT_S)
            except TimeoutError:
                logger.warning(
                    "clinician link to session %s: the socket's node went quiet", call.session_id[:8]
                )
                break
            kind = message.get("type")
            if kind == "link.audio" and voice is not None:
                await voice.audio(message["pcm"])
            elif kind == "link.close":
                code = message.get("code")
                break
    finally:
        reader.cancel()
        forwarder.cancel()
        listen.remove(listener)
        grace = await voice.end(code) if voice is not None else None
        with contextlib.suppress(Exception):
            await layer.send(reply_to, _closed(grace, listener.dropped))


async def _read(layer, channel: str, into: asyncio.Queue) -> None:
    """One reader per link channel, never cancelled mid-link (a cancelled receive drops what
    the layer had buffered for the channel)."""
    while True:
        into.put_nowait(await layer.receive(channel))


async def _forward(layer, listener: listen.Listener, reply_to: str) -> None:
    """The tap's frames and events to the socket's node, in order; a keep-alive when quiet."""
    while True:
        try:
            item = await asyncio.wait_for(listener.queue.get(), ALIVE_S)
        except TimeoutError:
            item = _QUIET
        if item is None:
            message = {"type": "link.ended"}
        elif item is _QUIET:
            message = {"type": "link.alive"}
        elif isinstance(item, listen.TapAudio):
            message = {"type": "link.audio", "source": item.source, "rate": item.rate, "pcm": item.pcm}
        else:
            message = {"type": "link.event", "message": item.message}
        try:
            await layer.send(reply_to, message)
        except Exception:  # the socket's node is not reading (ChannelFull) or Redis hiccupped
            listener.dropped += 1
        if item is None:
            return


# --- this node, relaying to the call's node ---------------------------------------------------
class RemoteLink:
    def __init__(self, layer, session_id: str):
        self.layer = layer
        self.session_id = session_id
        self.listener = listen.Listener(session_id)  # not registered: fed by the relay
        self.info: dict = {}
        self.inbox: str | None = None  # the call node's channel for this link
        self._replies: asyncio.Queue[dict] = asyncio.Queue()  # accepted, ready, refused, closed
        self._tasks: list[asyncio.Task] = []
        self._heard = time.monotonic()
        self.lost = False  # the call's node stopped answering

    async def open(self, mode: str, username: str, skip: frozenset[int]):
        self.channel = await self.layer.new_channel()
        self._tasks.append(asyncio.ensure_future(self._read()))
        await self.layer.group_send(
            channel_groups.call_group(self.session_id),
            channel_groups.link(self.channel, mode, username, skip),
        )
        accepted = await self._reply(ACCEPT_TIMEOUT_S)
        if accepted is None or accepted["type"] != "link.accepted":
            self._stop()
            return NOT_LIVE
        self.inbox = accepted["inbox"]
        answer = await self._reply(READY_TIMEOUT_S)
        if answer is None or answer["type"] != "link.ready":
            self._stop()
            if answer is not None and answer["type"] == "link.refused":
                return Refusal(answer["code"], answer["error"], answer["message"])
            return NOT_LIVE
        self.info = answer["info"]
        self._tasks.append(asyncio.ensure_future(self._keep_alive()))
        return self

    async def _reply(self, timeout: float) -> dict | None:
        try:
            return await asyncio.wait_for(self._replies.get(), timeout)
        except TimeoutError:
            return None

    async def _read(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self._heard = time.monotonic()
            match message.get("type"):
                case "link.audio":
                    self.listener.offer(listen.TapAudio(message["source"], message["pcm"], message["rate"]))
                case "link.event":
                    self.listener.offer(listen.TapEvent(message["message"]))
                case "link.ended":
                    self.listener.offer(None)
                case "link.alive":
                    pass
                case _:
                    self._replies.put_nowait(message)

    async def _keep_alive(self) -> None:
        """Tell the call's node this socket is still there; take it as gone when it goes quiet."""
        while True:
            await asyncio.sleep(ALIVE_S)
            if time.monotonic() - self._heard > PEER_TIMEOUT_S:
                self.lost = True
                self.listener.offer(LINK_LOST)
                return
            with contextlib.suppress(Exception):
                await self.layer.send(self.inbox, {"type": "link.alive"})

    async def audio(self, pcm: bytes) -> None:
        await self.layer.send(self.inbox, {"type": "link.audio", "pcm": pcm})

    async def close(self, code: int | None) -> Closed:
        """Tell the call's node; it answers once the clinician's last words are stored."""
        if self.lost:
            self._stop()
            return Closed(None, self.listener.dropped)
        try:
            await self.layer.send(self.inbox, {"type": "link.close", "code": code})
            while (answer := await self._reply(CLOSED_TIMEOUT_S)) is not None:
                if answer["type"] == "link.closed":
                    return Closed(answer["grace"], answer["dropped"] + self.listener.dropped)
        except Exception:
            logger.warning("clinician link to session %s closed without an answer", self.session_id[:8])
        finally:
            self._stop()
        return Closed(None, self.listener.dropped)

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
