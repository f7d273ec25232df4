"""Admission control (deploy/README.md, "Admission control"): a per-process cap on concurrent
calls, and a waiting line shared by every node for the callers over it.

* ``line``: the cap, slots, and one caller's wait (told their place, spoken to, admitted);
* ``queue``: the FIFO in Redis (in memory without Redis), entries that expire with their node;
* ``announce``: the fixed words a waiting caller hears and sees.
"""

from .line import (
    Draining,
    Slot,
    Waiting,
    capacity,
    enter,
    free_slot,
    in_use,
    notify_dashboards,
    queue,
    was_started,
)

__all__ = [
    "Draining",
    "Slot",
    "Waiting",
    "capacity",
    "enter",
    "free_slot",
    "in_use",
    "notify_dashboards",
    "queue",
    "was_started",
]
