"""Any WebSocket path that is not a socket of ours (``/ws/nothing-here/``, ``/ws/patient//``).

Without it channels' router raises for an unmatched path: a traceback in the log and an
error close per probe. This accepts and closes at once with 4404 (docs/protocol.md §6)."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_UNKNOWN_PATH = 4404


class UnknownPathConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = "unknown-path-socket-uses-no-channel-layer"  # none configured: no layer

    async def connect(self):
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PATH)
