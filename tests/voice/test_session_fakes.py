"""Session logic with every model faked (tests/fakes.py): no Whisper, no Piper, no LLM. The VAD,
segmenter, endpointing, the rules and the reply path are real; a buzz the VAD calls speech stands
in for the caller's voice and a tone for the agent's."""

from __future__ import annotations

import pytest

from evals.voice.simulate import SimulatedClient, comfort_noise, stream_pcm
from tests.fakes import FakeRuntime, ScriptedRecognizer, ToneSynthesizer, voiced_buzz
from voice.config import PipelineConfig
from voice.events import AgentAudio, AgentReplyFinished, AgentReplyStarted, AgentText, FinalTranscript
from voice.pipeline import VoiceSession

pytestmark = pytest.mark.timeout(60)

SAID = "I have had a headache since this morning."


def _policy():
    from clinical_rules import PatientContext, TriageInterview

    return TriageInterview(context=PatientContext(subject="self", age_band="18_to_64"))


def _session_hearing(said: str) -> tuple[VoiceSession, SimulatedClient, FakeRuntime]:
    """A session whose fake recognizer always hears ``said``, with a tone for the agent's voice."""
    config = PipelineConfig(llm_backend="none")
    runtime = FakeRuntime(
        config, ScriptedRecognizer(lambda _s, _partial: said), synthesizer=ToneSynthesizer()
    )
    client = SimulatedClient(instant_playback=True)
    session = VoiceSession(runtime, _policy(), client.emit, config)
    client.attach(session)
    return session, client, runtime


def _tone_ms(audio: list[AgentAudio]) -> float:
    return sum(len(a.pcm) / 2 / a.sample_rate * 1000 for a in audio)


async def test_a_turn_runs_through_the_session_with_fake_models():
    session, client, runtime = _session_hearing(SAID)
    try:
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
        opening = next(e for e in client.of(AgentReplyStarted) if e.turn_id == 0)
        # the greeting was spoken by the fake voice: its words were synthesized, and the audio
        # the caller got is the tone's length for them
        assert any(t in opening.required_text for t in runtime.synthesizer.texts)
        spoken = [e for e in client.of(AgentAudio) if e.reply_id == opening.reply_id]
        assert _tone_ms(spoken) > 1000

        await stream_pcm(session, comfort_noise(300) + voiced_buzz(1500))
        finished = None
        for i in range(100):  # an open microphone until the agent has answered the turn
            await stream_pcm(session, comfort_noise(100, seed=i))
            finished = next((e for e in client.of(AgentReplyFinished) if e.turn_id > 0), None)
            if finished:
                break
        assert finished is not None and not finished.interrupted
        finals = client.of(FinalTranscript)
        assert [f.text for f in finals] == [SAID]
        answer = next(e for e in client.of(AgentReplyStarted) if e.turn_id == finals[0].turn_id)
        texts = " ".join(e.text for e in client.of(AgentText) if e.reply_id == answer.reply_id)
        assert answer.required_text and answer.required_text in texts  # the rules' next words
        assert _tone_ms([e for e in client.of(AgentAudio) if e.reply_id == answer.reply_id]) > 500
    finally:
        await session.end("test")
        client.close()
        runtime.close()


async def test_escalation_is_the_calls_state_until_it_ends_while_turns_go_on():
    """Escalation is a flag of the call: the host sees one 'escalated' state until 'ended',
    and underneath the session goes on taking turns (the caller's next words are heard)."""
    from voice.events import EscalationRaised, StateChanged

    session, client, runtime = _session_hearing("I have crushing chest pain spreading down my left arm.")
    try:
        await session.start()
        await client.wait_for(lambda e: isinstance(e, AgentReplyFinished) and e.turn_id == 0)
        for burst in range(2):  # the red flag, then the caller again after the script
            await stream_pcm(session, comfort_noise(300, seed=50 + burst) + voiced_buzz(1500))
            for i in range(100):
                await stream_pcm(session, comfort_noise(100, seed=i))
                if len(client.of(FinalTranscript)) > burst and any(
                    e.turn_id > 0 and e.reply_id > burst for e in client.of(AgentReplyFinished)
                ):
                    break
        raised = client.of(EscalationRaised)
        assert len(raised) == 1 and session.escalated
        assert len(client.of(FinalTranscript)) == 2  # the turn after the escalation was heard too
        assert session.state == "escalated"
    finally:
        await session.end("test")
        client.close()
        runtime.close()
    states = [e.current for e in client.of(StateChanged)]
    assert states.count("escalated") == 1 and states[-2:] == ["escalated", "ended"]
