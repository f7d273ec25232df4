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
    # a turn's: turn-taking goes on under it (CallState derives the one from the other).
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
    # the only place it is written (CallState reports no move the table refuses).
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


class CallState:
    """The call's state as the host and the audit trail see it, derived, not kept in a second
    machine: the turn state until the call escalates, then 'escalated' until 'ended'.

    Turn-taking goes on under it (``turns``, the one machine); escalation is a flag of the call,
    set once. Every move reported is checked against the same table, so the 'escalated' row is
    the rule that lets nothing but 'ended' follow it."""

    def __init__(self) -> None:
        self.turns = TurnStateMachine()
        self.escalated = False

    @property
    def state(self) -> TurnState:
        turn = self.turns.state
        return TurnState.ESCALATED if self.escalated and turn is not TurnState.ENDED else turn

    def move(self, target: TurnState, *, cause: str, t: float, turn_id: int) -> StateChanged | None:
        """A turn-taking move (``IllegalTransition`` if the table refuses it) and what the host
        sees of it: the move itself, or, once escalated, nothing until 'ended'."""
        before = self.state
        event = self.turns.transition(target, cause=cause, t=t, turn_id=turn_id)
        return self._reported(before, cause, t, turn_id) if self.escalated else event

    def escalate(self, *, cause: str, t: float, turn_id: int) -> StateChanged | None:
        """Flag the call escalated: 'escalated' as the host sees it (None after 'ended')."""
        before = self.state
        after = before if before is TurnState.ENDED else TurnState.ESCALATED
        if after is not before and after not in TRANSITIONS[before]:
            raise IllegalTransition(before, after, cause)
        self.escalated = True
        return self._reported(before, cause, t, turn_id)

    def _reported(self, before: TurnState, cause: str, t: float, turn_id: int) -> StateChanged | None:
        after = self.state
        if after is before:
            return None
        if after not in TRANSITIONS[before]:
            raise IllegalTransition(before, after, cause)
        return StateChanged(previous=before.value, current=after.value, cause=cause, turn_id=turn_id, t=t)
