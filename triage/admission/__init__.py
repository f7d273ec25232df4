"""Admission control (deploy/README.md, "Admission control"): a per-process cap on concurrent
calls, and a waiting line shared by every node for the callers over it.

* ``line``: the cap, slots, the dispatcher that offers this node's free slots to the line, and
  one caller's wait (told their place, spoken to, admitted here or sent to the node whose slot
  was offered);
* ``queue``: the FIFO in Redis (in memory without Redis), entries that expire with their node;
* ``announce``: the fixed words a waiting caller hears and sees.
"""

from .line import (
    Draining,
    Redirect,
    Slot,
    Waiting,
    capacity,
    dispatch_once,
    enter,
    free_slot,
    in_use,
    notify_dashboards,
    queue,
    start_dispatcher,
    start_on_daphne,
    was_started,
)

__all__ = [
    "Draining",
    "Redirect",
    "Slot",
    "Waiting",
    "capacity",
    "dispatch_once",
    "enter",
    "free_slot",
    "in_use",
    "notify_dashboards",
    "queue",
    "start_dispatcher",
    "start_on_daphne",
    "was_started",
]
