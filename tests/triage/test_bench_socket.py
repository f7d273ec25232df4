"""The socket-level benchmark client against a live server (not a timed test).

``evals.triage.bench_socket`` starts daphne on a free port (embedded defaults in a throwaway
directory, the real models), runs one short call, one backchannel, one interruption and one
red-flag alert, and the fields the benchmark reports must all be produced. No timing is
asserted: the numbers depend on the machine. Plus the playback model on its own."""

from __future__ import annotations

import json

import pytest

from evals.speech import clause_breaks, quiet_gaps
from evals.triage.bench_socket.playback import Player
from evals.triage.bench_socket.runner import Options, format_table, run


def test_playback_model_holds_resumes_and_flushes_like_the_browser():
    p = Player()
    p.audio(1, 1000.0, now=10.0)  # plays 10.0 .. 11.0
    p.audio(1, 1000.0, now=10.1)  # queued behind it: 11.0 .. 12.0
    assert p.reply(1).time_at(1000.0) == pytest.approx(11.0)
    p.hold(10.5)
    p.release(11.0)  # held 0.5 s: the rest plays 0.5 s later
    assert p.reply(1).time_at(500.0) == pytest.approx(11.0)
    assert p.reply(1).time_at(1000.0) == pytest.approx(11.5)
    assert p.reply(1).end() == pytest.approx(12.5)
    p.complete(1)
    assert p.done(12.4) == [] and [r.reply_id for r in p.done(12.5)] == [1]
    p.audio(2, 2000.0, now=13.0)
    cut = p.flush(13.5)
    assert cut == {2: pytest.approx(500.0)} and not p.playing(13.6)


@pytest.mark.models
@pytest.mark.timeout(600)
def test_one_short_call_produces_every_field(tmp_path):
    out = tmp_path / "socket.json"
    result = run(Options.quick(out=out))
    assert json.loads(out.read_text())["summary"] == result["summary"]
    (turn,) = result["turns"]
    assert turn["first_statement"] and not turn["talked_over"]
    for key in ("response_onset_ms", "answer_onset_ms", "answer_heard_ms"):
        assert isinstance(turn[key], float), (key, turn)
    assert turn["response_onset_ms"] <= turn["answer_onset_ms"] <= turn["answer_heard_ms"]
    back, inter = result["barge"]
    assert back["kind"] == "backchannel" and inter["kind"] == "interruption"
    assert back["pause_ms"] is not None and inter["pause_ms"] is not None
    assert inter["interrupt_ms"] is not None  # a real interruption stops the agent
    assert back["resume_ms"] is not None or back["false_interruption"]
    (alert,) = result["alerts"]
    assert alert["latency_ms"] is not None and alert["rule_ids"]
    table = format_table(result)
    assert "answer heard" in table and "dashboard alert" in table


def test_out_may_name_a_folder(tmp_path):
    from evals.triage.bench_socket.runner import output_path

    assert output_path(tmp_path) == tmp_path / "socket.json"
    assert output_path(tmp_path / "run.json") == tmp_path / "run.json"


def test_hesitant_callers_pause_where_their_commas_are():
    """A hesitant caller's line: each comma pause stretched, in order, to the set length."""
    import numpy as np

    from evals.triage.bench_socket import speech

    rate = speech.RATE

    def tone(ms: int) -> np.ndarray:
        return (0.3 * np.sin(np.arange(rate * ms // 1000) * 0.2)).astype(np.float32)

    gap = np.zeros(rate * 250 // 1000, dtype=np.float32)  # Piper's comma pause
    short = np.zeros(rate * 60 // 1000, dtype=np.float32)  # a gap inside a word
    audio = np.concatenate([tone(300), gap, tone(200), short, tone(200), gap, tone(300)])
    out = speech.stretch_pauses(audio, 2, (700, 400))
    pauses = [round((g1 - g0) * 1000 / rate) for g0, g1 in quiet_gaps(out)]
    assert pauses == [700, 60, 400]
    with pytest.raises(ValueError):
        speech.stretch_pauses(audio, 2, (700,))
    for text, lengths, answers in speech.HESITANT_CALLS:
        assert clause_breaks(text) == len(lengths) and answers
        assert max(lengths) >= 700 and any(w in text.lower() for w in ("um,", "er,"))
