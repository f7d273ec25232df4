"""The process-wide voice runtime: models are loaded once and shared by every call."""

from __future__ import annotations

import asyncio
import logging
import threading

from voice.config import PipelineConfig
from voice.provisioning import ModelSettings
from voice.runtime import VoiceRuntime

logger = logging.getLogger(__name__)

_runtime: VoiceRuntime | None = None
_load_lock = threading.Lock()
_load_error: str | None = None  # the last failed load's exception type (for /readyz)


def load_runtime_blocking() -> VoiceRuntime:
    global _runtime, _load_error
    with _load_lock:
        if _runtime is None:
            config = PipelineConfig.from_env()
            logger.info("loading voice models")
            try:
                _runtime = VoiceRuntime.load(config, ModelSettings.from_env())
            except Exception as exc:
                _load_error = type(exc).__name__
                raise
            _load_error = None
            logger.info("voice models loaded")
        return _runtime


def models_state() -> str:
    """For readiness: "loaded", "loading", "failed:<ExceptionType>" or "on_demand" (not loaded
    yet; the first call loads them)."""
    if _runtime is not None:
        return "loaded"
    if _load_lock.locked():
        return "loading"
    if _load_error is not None:
        return f"failed:{_load_error}"
    return "on_demand"


async def get_runtime() -> VoiceRuntime:
    """Load on first use, in a thread, so the event loop keeps serving other sockets."""
    if _runtime is not None:
        return _runtime
    return await asyncio.to_thread(load_runtime_blocking)
