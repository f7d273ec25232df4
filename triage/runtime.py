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


def load_runtime_blocking() -> VoiceRuntime:
    global _runtime
    with _load_lock:
        if _runtime is None:
            config = PipelineConfig.from_env()
            logger.info("loading voice models")
            _runtime = VoiceRuntime.load(config, ModelSettings.from_env())
            logger.info("voice models loaded")
        return _runtime


async def get_runtime() -> VoiceRuntime:
    """Load on first use, in a thread, so the event loop keeps serving other sockets."""
    if _runtime is not None:
        return _runtime
    return await asyncio.to_thread(load_runtime_blocking)
