"""Clinician dashboard WebSocket (``ws/dashboard/``).

Needs a Django login with ``triage.view_clinical_dashboard`` (close 4403 otherwise). Joins
the channel group "dashboard", sends a snapshot of every open session, then:

* ``session.changed`` (from LiveCall's writer after each stored event, and from clinician
  actions): the row is re-read and pushed. Refreshes of one session are coalesced, and they
  run as tasks so a slow read never delays an alert behind it.
* ``escalation.raised`` (from LiveCall, as soon as the pipeline raises it, before it is
  stored): the alert with its rules and the words that fired them is pushed at once; the
  delay from the pipeline event is recorded (Prometheus + a ``alert_delivery`` latency sample).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from triage import metrics
from triage.dashboard import rows
from triage.dashboard.control import DASHBOARD_GROUP
from triage.dashboard.permissions import can_view
from triage.models import LatencySample

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
HOST = socket.gethostname()


def alert_delay_seconds(message: dict) -> float | None:
    """Seconds since the pipeline raised the alert: monotonic clock on the same host (immune
    to wall-clock steps), wall clock across hosts."""
    if message.get("host") == HOST and message.get("raised_mono") is not None:
        return max(0.0, time.monotonic() - float(message["raised_mono"]))
    if message.get("raised_wall") is not None:
        return max(0.0, time.time() - float(message["raised_wall"]))
    return None


def _store_alert_delivery(session_id: str, turn_id: int, ms: float) -> None:
    # First dashboard to receive it wins; the unique (session, turn, stage) drops the rest.
    LatencySample.objects.bulk_create(
        [
            LatencySample(
                session_id=session_id, turn_id=turn_id, stage="alert_delivery", duration_ms=round(ms, 1)
            )
        ],
        ignore_conflicts=True,
    )


class DashboardConsumer(AsyncWebsocketConsumer):
    allowed = False

    async def connect(self):
        self.allowed = False
        self._refreshing: dict[str, bool] = {}  # session id -> another refresh wanted
        self._tasks: set[asyncio.Task] = set()
        user = self.scope.get("user")
        allowed = await database_sync_to_async(can_view)(user)
        # Accept first so the client can read why it is refused (a 4403 close, not a bare 403).
        await self.accept()
        if not allowed:
            await self.send_json(
                {"type": "error", "code": "forbidden", "message": "Clinician login required."}
            )
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.allowed = True
        self.username = user.get_username()
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        snapshot = await database_sync_to_async(rows.active_rows)()
        await self.send_json(
            {"type": "snapshot", "sessions": snapshot, "user": self.username, "t": time.time()}
        )

    async def disconnect(self, code):
        if self.allowed:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)
        for task in list(self._tasks):
            task.cancel()

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))

    async def receive(self, text_data=None, bytes_data=None):
        if not self.allowed or not text_data:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send_json({"type": "pong", "t": message.get("t")})
        elif isinstance(message, dict) and message.get("type") == "refresh":
            await self.send_json(
                {"type": "snapshot", "sessions": await database_sync_to_async(rows.active_rows)()}
            )

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- group messages -------------------------------------------------------------------
    async def escalation_raised(self, message: dict) -> None:
        delay = alert_delay_seconds(message)
        alert = {
            "type": "alert",
            "session_id": message["session_id"],
            "turn_id": message.get("turn_id"),
            "level": message["level"],
            "level_label": rows.urgency_label(message["level"]),
            "disposition": message.get("disposition", ""),
            "rule_ids": message.get("rule_ids", []),
            "reasons": [rows.describe_reason(r) for r in message.get("reasons", [])],
            "on_partial": message.get("on_partial", False),
            "raised_wall": message.get("raised_wall"),
            "delivery_ms": None if delay is None else round(delay * 1000.0, 1),
        }
        await self.send_json(alert)
        if delay is not None:
            metrics.ALERT_DELIVERY.observe(delay)
            if message.get("turn_id") is not None:
                self._spawn(
                    database_sync_to_async(_store_alert_delivery)(
                        message["session_id"], int(message["turn_id"]), delay * 1000.0
                    )
                )

    async def session_changed(self, message: dict) -> None:
        session_id = message["session_id"]
        if session_id in self._refreshing:
            self._refreshing[session_id] = True  # the running refresh will read again
            return
        self._refreshing[session_id] = False
        self._spawn(self._refresh(session_id))

    async def _refresh(self, session_id: str) -> None:
        try:
            while True:
                self._refreshing[session_id] = False
                row = await database_sync_to_async(rows.fetch_row)(session_id)
                if row is not None:
                    await self.send_json({"type": "session", "session": row})
                if not self._refreshing.get(session_id):
                    break
        except Exception:
            logger.warning("dashboard refresh failed", exc_info=True)
        finally:
            self._refreshing.pop(session_id, None)
