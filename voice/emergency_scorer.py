"""The process-wide learned emergency scorer for live calls (clinical_rules.emergency_scorer).

Loaded once, in a thread, with the bundled embedding model, like the safety net; if the model
file or the encoder is missing the calls go on with the rules alone and the reason is logged
once. ``TRIAGE_EMERGENCY_SCORER=0`` turns it off. Training and evaluation live in
``evals/voice/emergency_scorer.py``.
"""

from __future__ import annotations

import logging
import threading

from voice.clinical import EmergencyScorer
from voice.config import switched_on

log = logging.getLogger(__name__)

_scorer: EmergencyScorer | None = None
_failed: str | None = None
_lock = threading.Lock()


def enabled() -> bool:
    return switched_on("TRIAGE_EMERGENCY_SCORER")


def load_emergency_scorer() -> EmergencyScorer | None:
    """The process's scorer (blocking: call in a thread), or None if disabled or unavailable."""
    global _scorer, _failed
    if not enabled():
        return None
    with _lock:
        if _scorer is None and _failed is None:
            try:
                from voice.embedding import shared_embedder

                _scorer = EmergencyScorer(shared_embedder())
            except Exception as exc:  # no model file, no embedder: the rules still run
                _failed = str(exc)
                log.error("learned emergency scorer disabled: %s", exc)
        return _scorer
