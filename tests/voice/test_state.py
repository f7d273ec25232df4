"""Turn state machine: one table, illegal moves raise, every move is an audit event."""

import pytest

from voice.events import StateChanged
from voice.state import TRANSITIONS, CallState, IllegalTransition, TurnState, TurnStateMachine

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


def _reported(call: CallState, moves):
    out = []
    for i, (target, cause) in enumerate(moves):
        ev = (
            call.escalate(cause=cause, t=float(i), turn_id=i)
            if target is None
            else call.move(target, cause=cause, t=float(i), turn_id=i)
        )
        if ev is not None:
            out.append((ev.previous, ev.current, ev.cause, ev.turn_id))
    return out


def test_call_state_is_the_turn_state_until_escalation_then_escalated_until_ended():
    """The host's view is derived from the one turn machine and the escalation flag: before it,
    every turn move is reported as made; after it, turn-taking goes on unreported, and the
    call's end is reported from 'escalated'."""
    call = CallState()
    moves = [
        (S.LISTENING, "audio"),
        (S.USER_SPEAKING, "speech_started"),
        (None, "escalation_partial"),  # escalate
        (S.THINKING, "end_of_turn:silence"),
        (S.AGENT_SPEAKING, "reply"),
        (S.LISTENING, "reply_done"),
        (None, "escalation"),  # a second escalation changes nothing
        (S.ENDED, "hangup"),
    ]
    assert _reported(call, moves) == [
        ("idle", "listening", "audio", 0),
        ("listening", "user_speaking", "speech_started", 1),
        ("user_speaking", "escalated", "escalation_partial", 2),
        ("escalated", "ended", "hangup", 7),
    ]
    assert call.escalated and call.state is S.ENDED and call.turns.state is S.ENDED
    # turn-taking went on under the escalated state, every move by the one table
    assert [e.current for e in call.turns.history][2:5] == ["thinking", "agent_speaking", "listening"]


def test_call_state_refuses_what_the_table_refuses():
    call = CallState()
    with pytest.raises(IllegalTransition):  # the table has no idle -> escalated
        call.escalate(cause="escalation", t=0.0, turn_id=0)
    assert not call.escalated and call.state is S.IDLE
    call.move(S.LISTENING, cause="audio", t=0.0, turn_id=0)
    call.escalate(cause="escalation", t=0.0, turn_id=0)
    with pytest.raises(IllegalTransition):  # turn-taking still follows its own rows
        call.move(S.THINKING, cause="x", t=0.0, turn_id=0)
    assert call.state is S.ESCALATED


def test_escalating_an_ended_call_reports_nothing():
    call = CallState()
    call.move(S.ENDED, cause="hangup", t=0.0, turn_id=0)
    assert call.escalate(cause="escalation", t=1.0, turn_id=1) is None
    assert call.escalated and call.state is S.ENDED
