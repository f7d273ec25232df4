"""One short acknowledgement in front of the rules' words, chosen by what the patient said.

The reply opens with at most one acknowledgement, spoken from the phrase cache the moment the
turn ends (response onset), and the rules' question or disposition follows it at once. The
phrase depends on the patient's words (sympathy for pain or distress, thanks for an account,
a plain "Okay." for a short answer) and rotates so consecutive turns do not repeat it. The
choice is deterministic: same words and same recent history, same phrase. Fixed text (the
greeting, emergency scripts) gets none: an emergency script leads at once.

Every acknowledgement delays the question by its own length (issue 12, answer heard: "I'm
sorry to hear that." was 1.25 s before a first statement's question), so the phrases are short
(0.4-0.8 s of audio, trailing silence cut), and when the question is ready at the endpoint (``may_omit``) a brief
answer after a reply that already opened with one gets none: the question leads, as a nurse
going down a checklist does ("No." - "Okay. Any vomiting?" - "No." - "Any fever?").

Every phrase here is fixed, pre-synthesized text that was checked against the guardrail's
acknowledgement rules (no question, diagnosis, advice or patient voice;
``tests/voice/test_acknowledgement.py``), so no model output is spoken before the rules' words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Words that make sympathy the fitting acknowledgement (pain, injury, fear, being unwell).
_DISTRESS = re.compile(
    r"\b(?:pain\w*|hurt\w*|ache|aching|sore|bleed\w*|blood|cut|burn\w*|vomit\w*|throw\w* up|sick|"
    r"scared|worried|frightened|awful|terrible|horrible|bad|worse|unable|fell|fall|"
    r"injur\w*|swollen|swelling|crying|dizzy|faint\w*|breath\w*|fever|hot|cough\w*|rash|itch\w*)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True, slots=True)
class AcknowledgementSet:
    """Phrases by context. All of them end up in the phrase cache (``phrases()``)."""

    short: tuple[str, ...] = ("Okay.", "Got it.", "Alright.")  # a brief answer ("yes", "two days")
    account: tuple[str, ...] = ("Thank you.", "I see.", "Thanks.")  # a longer account
    # Sympathy, kept short: "I'm sorry to hear that." (1.25 s of audio) held the question back;
    # "I'm sorry." is 0.78 s. No commas: Piper pauses at one ("Oh, I'm sorry." 1.27 s).
    sympathy: tuple[str, ...] = ("I'm sorry.", "Oh dear.", "I see.")
    short_answer_words: int = 5  # up to this many words is a brief answer

    def phrases(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in (*self.short, *self.account, *self.sympathy):
            seen.setdefault(p, None)
        return tuple(seen)

    @classmethod
    def from_phrases(cls, phrases: Sequence[str]) -> AcknowledgementSet:
        """A configured flat list (``VOICE_ACKNOWLEDGEMENTS``): the same phrases for every context."""
        flat = tuple(p for p in phrases if p.strip()) or ("Okay.",)
        return cls(short=flat, account=flat, sympathy=flat)


DEFAULT_SET = AcknowledgementSet()


# In ``recent``: a reply to the patient that opened with no acknowledgement.
NONE = ""


def choose_acknowledgement(
    said: str | None,
    recent: Sequence[str],
    ack_set: AcknowledgementSet = DEFAULT_SET,
    *,
    may_omit: bool = False,
) -> str | None:
    """The acknowledgement for a reply to ``said`` (None: the words are not known yet).

    ``recent``: the openings of this call's replies to the patient, oldest first: the
    acknowledgement spoken, or ``NONE`` for a reply that had none. The first phrase of the
    fitting group that was not among the last two spoken is taken; if all were, the least
    recently spoken one. ``may_omit`` (the question is ready, nothing has to fill a wait):
    None for a brief answer without distress words when the last reply opened with an
    acknowledgement, so the question leads every other time."""
    words = _WORD.findall(said or "")
    if said is not None and _DISTRESS.search(said):
        group = ack_set.sympathy
    elif said is not None and len(words) > ack_set.short_answer_words:
        group = ack_set.account
    else:
        group = ack_set.short
        if may_omit and said is not None and words and recent and recent[-1] != NONE:
            return None
    recent = [r for r in recent if r != NONE]
    last_two = list(recent[-2:])
    for phrase in group:
        if phrase not in last_two:
            return phrase

    def last_used(phrase: str) -> int:
        for i in range(len(recent) - 1, -1, -1):
            if recent[i] == phrase:
                return i
        return -1

    return min(group, key=last_used)
