"""Turn state machine: one table, illegal moves raise, every move is an audit event."""

import pytest

from voice.events import StateChanged
from voice.state import TRANSITIONS, IllegalTransition, TurnState, TurnStateMachine

S = TurnState


def test_every_state_has_a_row_and_ended_is_terminal():
    assert set(TRANSITIONS) == set(TurnState)
    assert TRANSITIONS[S.ENDED] == frozenset()
    for state in TurnState:
        if state is not S.ENDED:
            assert S.ENDED in TRANSITIONS[state], f"{state} cannot end the call"


def test_a_normal_conversation_is_legal_and_recorded():
    sm = TurnStateMachine()
    path = [
        (S.AGENT_SPEAKING, "greeting"),
        (S.LISTENING, "reply_done"),
        (S.USER_SPEAKING, "speech_started"),
        (S.THINKING, "end_of_turn"),
        (S.AGENT_SPEAKING, "reply"),
        (S.INTERRUPTED, "barge_in"),
        (S.USER_SPEAKING, "speech_continues"),
        (S.ESCALATED, "escalation_partial"),
        (S.ENDED, "hangup"),
    ]
    for i, (target, cause) in enumerate(path):
        ev = sm.transition(target, cause=cause, t=float(i), turn_id=i)
        assert isinstance(ev, StateChanged)
        assert (ev.current, ev.cause, ev.t, ev.turn_id) == (target.value, cause, float(i), i)
    assert [e.previous for e in sm.history] == ["idle"] + [t.value for t, _ in path[:-1]]
    assert sm.state is S.ENDED


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.IDLE, S.THINKING),
        (S.LISTENING, S.THINKING),  # no end of turn without a turn
        (S.LISTENING, S.INTERRUPTED),  # nothing to interrupt
        (S.USER_SPEAKING, S.AGENT_SPEAKING),  # the agent never talks over an open turn
        (S.THINKING, S.INTERRUPTED),
        (S.ESCALATED, S.LISTENING),  # escalation is sticky
        (S.ESCALATED, S.AGENT_SPEAKING),
        (S.ENDED, S.LISTENING),
        (S.ENDED, S.ENDED),
    ],
)
def test_illegal_transitions_raise(start, target):
    sm = TurnStateMachine(start)
    with pytest.raises(IllegalTransition) as info:
        sm.transition(target, cause="test", t=0.0, turn_id=0)
    assert info.value.current is start and info.value.target is target
    assert sm.state is start and sm.history == []  # nothing recorded for a refused move


def test_every_pair_outside_the_table_is_refused():
    for a in TurnState:
        for b in TurnState:
            sm = TurnStateMachine(a)
            if b in TRANSITIONS[a]:
                sm.transition(b, cause="x", t=0.0, turn_id=0)
                assert sm.state is b
            else:
                with pytest.raises(IllegalTransition):
                    sm.transition(b, cause="x", t=0.0, turn_id=0)


def test_state_names_accept_strings():
    sm = TurnStateMachine()
    sm.transition("listening", cause="audio", t=1.0, turn_id=0)
    assert sm.can("user_speaking") and not sm.can("thinking")
    with pytest.raises(ValueError):
        sm.transition("dancing", cause="x", t=0.0, turn_id=0)
