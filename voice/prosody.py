"""How the agent speaks: Piper's speaking rate and the pause after each clause, by context.

Two settings. ``normal`` is Piper's own pace. ``calm`` is slower (``length_scale`` 1.25: with
the bundled voice a clause takes about 15% longer, pauses inside it do not stretch) with 250 ms
of silence after each clause, for a caller in high distress, an
elderly caller (the person unwell is the caller and 65 or over), and every emergency script, so
instructions land one at a time. The words never change, only their pace; the phrase cache keeps
each setting's audio under its own key (``voice.tts.PhraseCache``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prosody:
    name: str
    length_scale: float  # Piper: > 1 speaks more slowly
    clause_pause_ms: int  # silence after each clause

    @property
    def cache_tag(self) -> str:
        """Part of a phrase-cache key ('' for the normal pace, so existing entries stay valid)."""
        return "" if self.name == "normal" else f"{self.name}:{self.length_scale:g}"


NORMAL = Prosody("normal", 1.0, 0)
CALM = Prosody("calm", 1.25, 250)


def choose(prompt_kind: str | None, *, distress_high: bool, elderly: bool) -> Prosody:
    """The setting for one reply."""
    if prompt_kind == "emergency" or distress_high or elderly:
        return CALM
    return NORMAL


def is_elderly_caller(context) -> bool:
    """The session form says the person unwell is the caller and 65 or over."""
    return getattr(context, "subject", None) == "self" and getattr(context, "age_band", None) == "65_plus"
