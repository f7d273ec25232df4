"""Turn state machine: the conversation's states and, in ONE table, the transitions allowed.

Every transition produces a ``StateChanged`` event (timestamp + cause) that the host
persists into the audit trail, so an illegal move is a bug and raises at once instead of
silently producing an impossible audit record.
"""

from __future__ import annotations

from enum import StrEnum

from voice.events import StateChanged


class TurnState(StrEnum):
    IDLE = "idle"  # session created, nothing said yet
    LISTENING = "listening"  # waiting for the patient
    USER_SPEAKING = "user_speaking"  # patient's voice detected (incl. mid-turn pauses)
    THINKING = "thinking"  # end of turn decided, reply being prepared
    AGENT_SPEAKING = "agent_speaking"  # agent audio is being played
    INTERRUPTED = "interrupted"  # barge-in: agent stopped, waiting for what was played
    # Emergency: only the fixed script is spoken from here on. The call's state as reported, not
    # a turn's: VoiceSession keeps turn-taking in a second machine under the same table.
    ESCALATED = "escalated"
    ENDED = "ended"  # terminal


S = TurnState

# The single source of truth for what may follow what.
TRANSITIONS: dict[TurnState, frozenset[TurnState]] = {
    S.IDLE: frozenset({S.LISTENING, S.AGENT_SPEAKING, S.ENDED}),
    S.LISTENING: frozenset({S.USER_SPEAKING, S.AGENT_SPEAKING, S.ESCALATED, S.ENDED}),
    S.USER_SPEAKING: frozenset({S.LISTENING, S.THINKING, S.ESCALATED, S.ENDED}),
    # thinking -> user_speaking: the patient went on, the speculative reply is dropped.
    S.THINKING: frozenset({S.AGENT_SPEAKING, S.USER_SPEAKING, S.LISTENING, S.ESCALATED, S.ENDED}),
    S.AGENT_SPEAKING: frozenset({S.LISTENING, S.INTERRUPTED, S.ESCALATED, S.ENDED}),
    S.INTERRUPTED: frozenset({S.USER_SPEAKING, S.LISTENING, S.ESCALATED, S.ENDED}),
    # Escalation is sticky: the session keeps listening and repeating the script, but the
    # audit trail shows one escalated state until the call ends. This row is that rule, and
    # the only place it is written (VoiceSession reports no move the table refuses here).
    S.ESCALATED: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    def __init__(self, current: TurnState, target: TurnState, cause: str):
        super().__init__(f"illegal transition {current.value} -> {target.value} (cause: {cause})")
        self.current = current
        self.target = target
        self.cause = cause


class TurnStateMachine:
    """Holds the current state; ``transition`` validates against ``TRANSITIONS``."""

    def __init__(self, initial: TurnState = TurnState.IDLE):
        self._state = initial
        self.history: list[StateChanged] = []

    @property
    def state(self) -> TurnState:
        return self._state

    def can(self, target: TurnState | str) -> bool:
        return TurnState(target) in TRANSITIONS[self._state]

    def transition(self, target: TurnState | str, *, cause: str, t: float, turn_id: int) -> StateChanged:
        target = TurnState(target)
        if target not in TRANSITIONS[self._state]:
            raise IllegalTransition(self._state, target, cause)
        event = StateChanged(
            previous=self._state.value, current=target.value, cause=cause, turn_id=turn_id, t=t
        )
        self._state = target
        self.history.append(event)
        return event
