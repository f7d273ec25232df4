"""Messages from the clinician side to a live call and to the dashboards, over the channel
layer (groups and messages: triage/channel_groups.py).

A call runs in whichever daphne process holds the patient's socket; each LiveCall listens on
its ``call_group`` (triage/live.py), so a dashboard action or Celery beat can reach it from any
process. A message for a call that is no longer live is simply dropped.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from triage import channel_groups as groups
from triage import channel_outage

TAKE_OVER_TEXT = "A clinician is joining the call now. Please stay on the line."


async def send_to_call(session_id, message: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(groups.call_group(session_id), message)


async def notify_dashboards(session_id, event: str) -> None:
    layer = get_channel_layer()
    if layer is not None:
        try:
            await layer.group_send(groups.DASHBOARD_GROUP, groups.session_changed(session_id, event))
        except Exception as exc:  # stored already; dashboards re-read everything when the layer is back
            channel_outage.health.failed("dashboard broadcast", exc)


def request_take_over(session_id, clinician: str) -> None:
    """Ask the live call to stop the agent and tell the patient a clinician is joining."""
    async_to_sync(send_to_call)(session_id, groups.take_over(clinician))


def request_hand_back(session_id, text: str) -> None:
    """Ask the live call to say ``text`` and let the agent speak again (triage/handoff.py)."""
    async_to_sync(send_to_call)(session_id, groups.hand_back(text))


def request_end(session_id, reason: str) -> None:
    async_to_sync(send_to_call)(session_id, groups.end_call(reason))


def dashboards_changed(session_id, event: str) -> None:
    async_to_sync(notify_dashboards)(session_id, event)
