"""Joined turns (issue 12), through the real pipeline: Piper speech in, webrtcvad, tiny.en, the
clinical rules, Piper audio out, played back in real time by the simulated client.

A caller pauses mid-statement long enough for the endpoint to end the turn; the agent starts
its reply; the caller goes on. The agent must yield at once and the rules must see the whole
statement once: no reply to the fragment remains, and the reply that follows answers both
halves. The pause is "as long as it takes": noise is streamed until the reply's audio
arrives, so the scenario holds however fast this CPU decodes.
"""

from __future__ import annotations

import asyncio

import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from tests.speech import speech_pcm16k
from voice.config import PipelineConfig
from voice.events import (
    AgentAudio,
    AgentInterrupted,
    AgentPaused,
    AgentReplyFinished,
    AgentReplyStarted,
    EndOfTurn,
    FinalTranscript,
    StateChanged,
)
from voice.pipeline import VoiceSession
from voice.runtime import VoiceRuntime
from voice.state import TRANSITIONS, TurnState

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]

FRAGMENT = "I have had a headache since this morning."
GOES_ON = "And now I feel sick and dizzy when I stand up."
ANSWER = "No."


@pytest.fixture(scope="module")
def runtime():
    for text in (FRAGMENT, GOES_ON, ANSWER):
        speech_pcm16k(text)
    # No LLM: the default acknowledgements are cached phrases and the rules' words follow.
    rt = VoiceRuntime.load(PipelineConfig(llm_backend="none"))
    yield rt
    rt.close()


def policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


async def open_session(runtime, **config):
    client = SimulatedClient(instant_playback=False)  # the browser plays in real time
    cfg = PipelineConfig(**{"llm_backend": "none", **config})
    session = VoiceSession(runtime, policy(), client.emit, cfg)
    client.attach(session)
    await session.start()
    await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
    return session, client


async def noise_until(session, client, predicate, max_s: float = 30.0):
    """An open microphone (faint noise) until ``predicate(event)`` has been seen."""
    task = asyncio.ensure_future(client.wait_for(predicate, timeout=max_s))
    i = 0
    while not task.done():
        await stream_pcm(session, comfort_noise(40, seed=i), stop=task.done)
        i += 1
    return task.result()


def check_state_trail(client) -> None:
    prev = "idle"
    for ch in client.of(StateChanged):
        assert ch.previous == prev and TurnState(ch.current) in TRANSITIONS[TurnState(prev)], ch
        prev = ch.current


async def test_caller_going_on_over_the_reply_is_joined_into_one_turn(runtime):
    session, client = await open_session(runtime)
    try:
        await stream_pcm(session, speech_pcm16k(FRAGMENT))
        # The pause goes on until the agent's reply to the fragment is being heard...
        end = await noise_until(session, client, lambda e: isinstance(e, EndOfTurn))
        first = await client.wait_for(lambda e: isinstance(e, AgentReplyStarted) and e.turn_id == end.turn_id)
        await noise_until(
            session, client, lambda e: isinstance(e, AgentAudio) and e.reply_id == first.reply_id
        )
        # ... then the caller goes on with the statement.
        await stream_pcm(session, speech_pcm16k(GOES_ON))
        joined = await noise_until(
            session, client, lambda e: isinstance(e, FinalTranscript) and e.turn_id > end.turn_id
        )
        reply = await client.wait_for(
            lambda e: isinstance(e, AgentReplyStarted) and e.turn_id == joined.turn_id
        )
        done = await noise_until(
            session, client, lambda e: isinstance(e, AgentReplyFinished) and e.reply_id == reply.reply_id
        )

        # The agent yielded: its reply to the fragment was held, then cut off, never finished.
        (cut,) = [e for e in client.of(AgentReplyFinished) if e.reply_id == first.reply_id]
        assert cut.interrupted
        assert any(
            isinstance(e, AgentPaused | AgentInterrupted) and e.reply_id == first.reply_id
            for e in client.events
        )
        assert [e.reply_id for e in client.of(AgentInterrupted)] == [first.reply_id]
        # One statement, whole: the joined transcript has both halves, and the rules took one
        # utterance (the fragment's was rolled back), so nothing was parsed as an answer to a
        # question the caller never heard.
        text = joined.text.lower()
        assert "headache" in text and "morning" in text and "sick" in text and "dizzy" in text, text
        assert session.stats.joined_turns == 1
        assert session.policy._utterances == 1
        assert [s for s, _ in session.transcript if s == "patient"] == ["patient"]
        # The reply that remains answers the joined turn and was heard to its end.
        assert not done.interrupted and done.text
        answered = [e for e in client.of(AgentReplyFinished) if not e.interrupted and e.turn_id > 0]
        assert [e.reply_id for e in answered] == [reply.reply_id]
        check_state_trail(client)

        # The next words, after the reply was heard to its end, are an answer: a turn of their own.
        await stream_pcm(session, speech_pcm16k(ANSWER))
        answer = await noise_until(
            session, client, lambda e: isinstance(e, FinalTranscript) and e.turn_id > joined.turn_id
        )
        assert "no" in answer.text.lower()
        assert session.stats.joined_turns == 1 and session.policy._utterances == 2
    finally:
        await session.end("test_done")
        client.close()


async def test_without_joining_the_fragment_stays_a_turn_of_its_own(runtime):
    """The same conversation with joining off (``join_window_ms=0``): what happened before."""
    session, client = await open_session(runtime, join_window_ms=0)
    try:
        await stream_pcm(session, speech_pcm16k(FRAGMENT))
        end = await noise_until(session, client, lambda e: isinstance(e, EndOfTurn))
        first = await client.wait_for(lambda e: isinstance(e, AgentReplyStarted) and e.turn_id == end.turn_id)
        await noise_until(
            session, client, lambda e: isinstance(e, AgentAudio) and e.reply_id == first.reply_id
        )
        await stream_pcm(session, speech_pcm16k(GOES_ON))
        later = await noise_until(
            session, client, lambda e: isinstance(e, FinalTranscript) and e.turn_id > end.turn_id
        )
        assert "headache" not in later.text.lower()
        assert session.stats.joined_turns == 0 and session.policy._utterances == 2
    finally:
        await session.end("test_done")
        client.close()
