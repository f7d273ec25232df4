"""Clinician dashboard WebSocket (``ws/dashboard/``).

Needs a Django login with ``triage.view_clinical_dashboard`` (close 4403 otherwise). Joins
the channel group "dashboard", sends a snapshot of every open session, then:

* ``dashboard.access_changed`` (group ``dashboard.user.<pk>``, from the signal handlers in
  ``triage/dashboard/access.py``: logout, user deactivated, groups or permissions removed):
  access is checked again from the session and, if it is gone, the socket closes with 4401.
  The same check runs on every message the client sends and every
  ``TRIAGE_DASHBOARD_RECHECK_SECONDS``, so a stale socket never gets data it may not see.

* ``session.changed`` (from LiveCall's writer after each stored event, and from clinician
  actions): the row is re-read and pushed. Refreshes of one session are coalesced, and they
  run as tasks so a slow read never delays an alert behind it.
* ``escalation.raised`` (from LiveCall, as soon as the pipeline raises it, before it is
  stored): the alert with its rules and the words that fired them is pushed at once; the
  delay from the pipeline event is recorded (Prometheus + a ``alert_delivery`` latency sample).

A channel-layer (Redis) outage does not close the socket: its reads of the layer wait the
outage out, then the socket joins its groups again (a restarted Redis has forgotten them)
and sends a fresh snapshot, which holds every open alert, including any raised meanwhile
(their held broadcasts follow, see triage/channel_outage.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from triage import admission, channel_outage, metrics
from triage.channel_groups import DASHBOARD_GROUP, layer_restored, user_group
from triage.dashboard import access, selectors
from triage.dashboard.permissions import can_view
from triage.models import LatencySample

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403
# The login lost access while the socket was open (logged out, deactivated, permission removed).
CLOSE_ACCESS_REVOKED = 4401
HOST = socket.gethostname()
QUEUE_REFRESH_SECONDS = 5.0


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
    joined = False  # in the dashboard groups on the channel layer

    async def __call__(self, scope, receive, send):
        # As channels' AsyncConsumer.__call__, but the layer is read through _receive_from_layer,
        # which waits out an outage instead of ending the socket with 1011.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()  # local: no Redis round trip
        self.base_send = send
        try:
            await await_many_dispatch([receive, self._receive_from_layer], self.dispatch)
        except StopConsumer:
            pass

    async def _receive_from_layer(self) -> dict:
        while True:
            if self.allowed and not self.joined:
                await asyncio.sleep(channel_outage.RETRY_SECONDS)
                try:
                    await self._join_groups()
                except Exception as exc:
                    channel_outage.health.failed("dashboard socket (joining its groups)", exc)
                    continue
                channel_outage.health.ok()
                return layer_restored()
            try:
                return await self.channel_layer.receive(self.channel_name)
            except Exception as exc:
                channel_outage.health.failed("dashboard socket (reading the channel layer)", exc)
                self.joined = False
                if not self.allowed:
                    await asyncio.sleep(channel_outage.RETRY_SECONDS)

    async def _join_groups(self) -> None:
        # The user's group first, so a revocation racing this join is not missed (the
        # re-check after it then sees it).
        await self.channel_layer.group_add(user_group(self.user_pk), self.channel_name)
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        self.joined = True

    async def dashboard_layer_restored(self, message: dict) -> None:
        """Back after a channel-layer outage: what changed meanwhile, from the database."""
        if await self._revoke_if_lost():
            return
        await self._send_snapshot()

    async def _send_snapshot(self) -> None:
        snapshot = await database_sync_to_async(selectors.active_rows)()
        await self.send_json(
            {"type": "snapshot", "sessions": snapshot, "user": self.username, "t": time.time()}
        )
        await self._send_queue()

    async def _send_queue(self) -> None:
        """Callers waiting for a line on every node (triage/admission/), oldest first."""
        try:
            waiters = await admission.queue().waiters()
        except Exception as exc:  # Redis away: the list is stale until it answers
            logger.warning("could not read the waiting line: %s", type(exc).__name__)
            return
        now = time.time()
        self._queue_shown = bool(waiters)
        await self.send_json(
            {
                "type": "queue",
                "waiting": [
                    {
                        "session_id": w.session_id,
                        "short_id": w.session_id[:8],
                        "node": w.node,
                        "position": w.position,
                        "waited_s": round(max(0.0, now - w.since), 1),
                    }
                    for w in waiters
                ],
                "t": now,
            }
        )

    async def queue_changed(self, message: dict) -> None:
        if self.allowed and not self._queue_pending:
            self._queue_pending = True
            self._spawn(self._refresh_queue())

    async def _refresh_queue(self) -> None:
        try:
            await self._send_queue()
        finally:
            self._queue_pending = False

    async def _queue_every(self, interval: float) -> None:
        """While callers wait, re-read the line: an entry whose node died expires without a
        broadcast."""
        while self.allowed:
            await asyncio.sleep(interval)
            if self._queue_shown and not self._queue_pending:
                await self.queue_changed({})

    async def connect(self):
        self.allowed = False
        self._refreshing: dict[str, bool] = {}  # session id -> another refresh wanted
        self._queue_pending = False  # a read of the waiting line is under way
        self._queue_shown = False  # the last list sent had callers in it
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
        self.user_pk = user.pk
        self.session_key: str | None = getattr(self.scope.get("session"), "session_key", None)
        try:
            await self._join_groups()
        except Exception as exc:  # joined when the layer is back (_receive_from_layer)
            channel_outage.health.failed("dashboard socket (joining its groups)", exc)
        if await self._revoke_if_lost():
            return
        await self._send_snapshot()
        interval = float(settings.TRIAGE["DASHBOARD_RECHECK_SECONDS"])
        if interval > 0:
            self._spawn(self._recheck_every(interval))
        self._spawn(self._queue_every(QUEUE_REFRESH_SECONDS))

    async def disconnect(self, code):
        if self.allowed:
            self.allowed = False
            await self._leave_groups()
        for task in list(self._tasks):
            task.cancel()

    async def _leave_groups(self) -> None:
        joined, self.joined = self.joined, False
        if not joined:
            return
        try:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)
            await self.channel_layer.group_discard(user_group(self.user_pk), self.channel_name)
        except Exception as exc:  # the memberships expire on their own
            channel_outage.health.failed("dashboard socket (leaving its groups)", exc)

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))

    async def receive(self, text_data=None, bytes_data=None):
        if not self.allowed or not text_data:
            return
        # Every message is checked against the login as it is now, not as it was at connect.
        if await self._revoke_if_lost():
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send_json({"type": "pong", "t": message.get("t")})
        elif isinstance(message, dict) and message.get("type") == "refresh":
            await self.send_json(
                {"type": "snapshot", "sessions": await database_sync_to_async(selectors.active_rows)()}
            )

    # --- access ---------------------------------------------------------------------------
    async def _revoke_if_lost(self) -> bool:
        """Check access afresh; if it is gone, close with 4401. Returns True when closed."""
        if not self.allowed:
            return True
        reason = await database_sync_to_async(access.access_lost)(self.session_key, self.user_pk)
        if reason is None:
            return False
        await self._revoke(reason)
        return True

    async def _revoke(self, reason: str) -> None:
        if not self.allowed:
            return
        self.allowed = False  # from here on nothing more is sent but the close
        await self._leave_groups()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await self.send_json(
            {
                "type": "error",
                "code": "access_revoked",
                "reason": reason,
                "message": "Your dashboard access has ended: sign in again.",
            }
        )
        await self.close(code=CLOSE_ACCESS_REVOKED)
        logger.info("dashboard socket of user id %s closed: %s", self.user_pk, reason)

    async def dashboard_access_changed(self, message: dict) -> None:
        if not self.allowed:
            return
        if message.get("session_key") and message["session_key"] == self.session_key:
            # This socket's own session was logged out; the store may not be flushed yet.
            await self._revoke(access.SIGNED_OUT)
        else:
            await self._revoke_if_lost()

    async def _recheck_every(self, interval: float) -> None:
        """Backstop for what sends no signal: an expired session, a bulk UPDATE of users."""
        while self.allowed:
            await asyncio.sleep(interval)
            try:
                await self._revoke_if_lost()
            except Exception:
                logger.warning("dashboard access re-check failed", exc_info=True)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- group messages -------------------------------------------------------------------
    async def escalation_raised(self, message: dict) -> None:
        if not self.allowed:
            return
        delay = alert_delay_seconds(message)
        alert = {
            "type": "alert",
            "kind": message.get("kind", "rules"),  # "safety_net": a possible red flag, no level set
            "session_id": message["session_id"],
            "turn_id": message.get("turn_id"),
            "level": message["level"],
            "level_label": selectors.urgency_label(message["level"]),
            "disposition": message.get("disposition", ""),
            "rule_ids": message.get("rule_ids", []),
            "reasons": [selectors.describe_reason(r) for r in message.get("reasons", [])],
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
        if not self.allowed:
            return
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
                row = await database_sync_to_async(selectors.fetch_row)(session_id)
                if row is not None and self.allowed:
                    await self.send_json({"type": "session", "session": row})
                if not self._refreshing.get(session_id):
                    break
        except Exception:
            logger.warning("dashboard refresh failed", exc_info=True)
        finally:
            self._refreshing.pop(session_id, None)
