"""Reply prompts for the triage-nurse persona.

The clinical rules decide WHAT must be said (a question or a disposition); the model only adds a
brief, warm acknowledgement in front of it. The message list is a fixed prefix (system prompt +
few-shot turns, byte-identical for every turn and session, so the backends' KV cache reuses it)
followed by one variable user message last.
"""

from __future__ import annotations

from collections.abc import Sequence

from voice.interfaces import ChatMessage

ACK_MAX_WORDS = 12

SYSTEM_PROMPT = (
    "You are a kind triage nurse on a phone call. The patient's words are given to you, together "
    "with the REQUIRED text that you must say. Answer with a short, warm acknowledgement in your "
    f"own words (at most {ACK_MAX_WORDS} words, not a question, never repeating the patient's "
    "words, never naming an illness, never advising medication), followed by the REQUIRED text "
    "word for word. Nothing else."
)

# (patient said, required text, reply). Deliberately unlike the real protocol's questions so the
# model does not copy an example's question instead of this turn's required text; the
# acknowledgements are generic on purpose (the model tends to reuse them, which is safe).
FEW_SHOT: tuple[tuple[str, str, str], ...] = (
    (
        "I twisted my ankle on the stairs this morning and it's really swollen.",
        "Can you put any weight on that foot?",
        "Oh, that must hurt, thank you for telling me. Can you put any weight on that foot?",
    ),
    (
        "My daughter has had a rash on her arms since yesterday.",
        "Is the rash raised, or is it flat?",
        "Thank you, that's helpful to know. Is the rash raised, or is it flat?",
    ),
    (
        "I've been throwing up since last night and I can't keep water down.",
        "Please contact your doctor's office today to be seen.",
        "I'm sorry you're going through that. Please contact your doctor's office today to be seen.",
    ),
    (
        "um I don't know, maybe two days?",
        "On a scale of 0 to 10, how strong is the discomfort?",
        "Okay, thank you. On a scale of 0 to 10, how strong is the discomfort?",
    ),
    # Short or off-topic answers made the 0.5B model refuse ("I can't assist with that") or
    # judge ("that's not a good idea") until these two were added.
    (
        "It's for my son, not for me.",
        "How old is he?",
        "Okay, thank you for explaining. How old is he?",
    ),
    (
        "No, nothing like that.",
        "Please book an appointment with your doctor this week.",
        "Okay, thank you for letting me know. Please book an appointment with your doctor this week.",
    ),
)


def _user_message(patient_said: str, required_text: str) -> str:
    said = " ".join(patient_said.split()) or "(nothing yet)"
    return f'Patient said: "{said}"\nREQUIRED text: "{required_text.strip()}"'


def _fixed_prefix() -> tuple[ChatMessage, ...]:
    messages = [ChatMessage("system", SYSTEM_PROMPT)]
    for said, required, reply in FEW_SHOT:
        messages.append(ChatMessage("user", _user_message(said, required)))
        messages.append(ChatMessage("assistant", reply))
    return tuple(messages)


FIXED_PREFIX: tuple[ChatMessage, ...] = _fixed_prefix()


def build_reply_messages(required_text: str, patient_said: str = "") -> list[ChatMessage]:
    """Messages for one reply: the fixed prefix, then this turn's variable part last."""
    if not required_text.strip():
        raise ValueError("required_text is empty")
    return [*FIXED_PREFIX, ChatMessage("user", _user_message(patient_said, required_text))]


def is_fixed_prefix(messages: Sequence[ChatMessage]) -> bool:
    """True when ``messages`` starts with the shared prefix (what the KV cache can reuse)."""
    return tuple(messages[: len(FIXED_PREFIX)]) == FIXED_PREFIX
