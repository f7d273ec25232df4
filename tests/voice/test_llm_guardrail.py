"""GuardedReply: validated clauses with their source; fallback to the rules' exact text.

The model-backed tests use the real bundled Qwen GGUF through llama.cpp. The deterministic
cases (a reply that drops or changes the question, a stalled model) use ``ScriptedTokenStream``,
a FAKE token stream that replays fixed pieces: the point there is what the guardrail does with a
given output, which a real model cannot be made to produce on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.fakes import NeverCalledGenerator, ScriptedGenerator, ScriptedTokenStream
from voice.llm.guardrail import GuardedReply, GuardrailConfig, GuardrailStats, match_required

QUESTION = "How long have you had the chest pain?"


@dataclass
class FakePrompt:
    """Stand-in for clinical_rules' Prompt (same fields)."""

    text: str
    kind: str = "question"
    fixed: bool = False
    rule_ids: tuple[str, ...] = ()


def words(text: str) -> list[str]:
    """Split like a tokenizer: leading-space pieces."""
    parts = text.split(" ")
    return [parts[0], *(" " + p for p in parts[1:])]


async def run(prompt, said, generator, **cfg):
    """The paraphrase path unless a test asks for ``required_verbatim=True`` (its own tests below)."""
    cfg.setdefault("required_verbatim", False)
    reply = GuardedReply(prompt, said, generator, config=GuardrailConfig(**cfg), stats=GuardrailStats())
    clauses = await reply.collect()
    return reply, [(c.text, c.source, c.role) for c in clauses]


# --- verbatim mode (the default): the model says the acknowledgement, the rules the rest ---


async def test_verbatim_speaks_the_ack_then_the_rules_words_and_stops_the_model():
    fake = ScriptedTokenStream(words("I'm sorry, that sounds painful. How long has your chest hurt?"))
    reply, clauses = await run(
        FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake), required_verbatim=True
    )
    assert clauses == [("I'm sorry, that sounds painful.", "llm", "ack"), (QUESTION, "rules", "required")]
    assert not reply.fallback_used
    # the model was stopped at the end of its acknowledgement: its paraphrase was never read
    assert fake.cancelled.is_set() and fake.yielded < len(fake.pieces)


async def test_verbatim_without_an_acknowledgement_is_a_fallback():
    fake = ScriptedTokenStream(words(QUESTION))
    reply, clauses = await run(
        FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake), required_verbatim=True
    )
    assert clauses == [(QUESTION, "fallback", "required")]
    assert reply.fallback_used and reply.fallback_reason == "ack_missing"


async def test_verbatim_unsafe_acknowledgement_is_a_fallback():
    fake = ScriptedTokenStream(words("It sounds like a heart attack. " + QUESTION))
    reply, clauses = await run(
        FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake), required_verbatim=True
    )
    assert clauses == [(QUESTION, "fallback", "required")]
    assert reply.fallback_used and reply.fallback_reason.startswith("ack_")


async def test_saturated_model_is_not_queued_for():
    gen = NeverCalledGenerator()
    gen.saturated = True  # every context busy with another caller's reply
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", gen, required_verbatim=True)
    assert clauses == [(QUESTION, "fallback", "required")]
    assert reply.fallback_reason == "llm_busy"


async def test_verbatim_stalled_model_falls_back_at_the_deadline():
    fake = ScriptedTokenStream(words("I'm sorry, that sounds painful. " + QUESTION), stall_after=2)
    reply, clauses = await run(
        FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake),
        required_verbatim=True, first_clause_deadline_ms=50,
    )  # fmt: skip
    assert clauses == [(QUESTION, "fallback", "required")]
    assert reply.fallback_reason == "first_clause_deadline"


# --- deterministic cases (scripted fake stream) -----------------------------------------


async def test_scripted_reply_that_carries_the_question_is_spoken_as_llm():
    fake = ScriptedTokenStream(words("I'm sorry, that sounds painful. " + QUESTION))
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake))
    assert clauses == [("I'm sorry, that sounds painful.", "llm", "ack"), (QUESTION, "llm", "required")]
    assert not reply.fallback_used and reply.fallback_reason is None
    assert reply.ttft_ms is not None and reply.first_clause_ms is not None


async def test_reply_that_omits_the_question_falls_back():
    fake = ScriptedTokenStream(words("Thank you for telling me. That must be hard."))
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake))
    assert reply.fallback_used and reply.fallback_reason == "required_missing"
    assert clauses == [
        ("Thank you for telling me.", "llm", "ack"),
        ("That must be hard.", "llm", "ack"),
        (QUESTION, "fallback", "required"),
    ]


async def test_reply_that_changes_the_question_falls_back():
    # the failure seen on this model: an earlier example's question instead of this turn's
    fake = ScriptedTokenStream(words("Okay, thank you. Can you put any weight on that foot?"))
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake))
    assert reply.fallback_used and reply.fallback_reason == "required_mismatch"
    assert clauses == [("Okay, thank you.", "llm", "ack"), (QUESTION, "fallback", "required")]


async def test_flipped_negation_is_not_accepted_as_the_question():
    required = "Are you able to walk without help?"
    fake = ScriptedTokenStream(words("Thank you. Are you able to walk with help?"))
    reply, clauses = await run(FakePrompt(required), "I fell", ScriptedGenerator(fake))
    assert reply.fallback_used and reply.fallback_reason in {"required_altered", "required_mismatch"}
    assert clauses[-1] == (required, "fallback", "required")


@pytest.mark.parametrize(
    ("ack", "reason"),
    [
        ("It sounds like a heart attack.", "ack_diagnosis"),
        ("You have angina, I think.", "ack_diagnosis"),
        ("Try taking some ibuprofen.", "ack_medication"),
        ("Please rest at home.", "ack_advice"),
        ("I'm sorry, but I can't assist with that.", "ack_refusal"),  # seen from this model
        ("Oh no, are you okay?", "extra_question"),
        ("I have chest pain too.", "ack_patient_voice"),
        ("Thank you so very much for telling me all about how you have been feeling.", "ack_too_long"),
    ],
)
async def test_unsafe_acknowledgement_is_never_spoken(ack, reason):
    fake = ScriptedTokenStream(words(f"{ack} {QUESTION}"))
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake))
    assert reply.fallback_used
    assert reply.fallback_reason in {
        reason,
        "ack_diagnosis",
        "ack_too_long",
        "extra_question",
        "ack_question",
    }
    assert all(c[1] != "llm" for c in clauses), clauses  # nothing of the model's was spoken
    assert clauses == [(QUESTION, "fallback", "required")]


async def test_stalled_model_misses_first_clause_budget():
    fake = ScriptedTokenStream(words("Thank you. " + QUESTION), stall_after=1)
    reply, clauses = await run(
        FakePrompt(QUESTION), "my chest hurts", ScriptedGenerator(fake), first_clause_deadline_ms=50
    )
    assert reply.fallback_reason == "first_clause_deadline"
    assert clauses == [(QUESTION, "fallback", "required")]
    assert fake.cancelled.is_set()  # the model was told to stop


async def test_model_stalling_after_the_ack_misses_total_budget():
    fake = ScriptedTokenStream(words("Thank you for telling me. How long"), stall_after=6)
    reply, clauses = await run(
        FakePrompt(QUESTION),
        "my chest hurts",
        ScriptedGenerator(fake),
        first_clause_deadline_ms=5000,
        total_deadline_ms=100,
    )
    assert reply.fallback_reason == "total_deadline"
    assert clauses == [("Thank you for telling me.", "llm", "ack"), (QUESTION, "fallback", "required")]
    assert fake.cancelled.is_set()


async def test_fixed_prompt_never_reaches_the_llm():
    script = "Call 911 now. Stay on the line with me."
    reply, clauses = await run(
        FakePrompt(script, kind="emergency", fixed=True), "I can't breathe", NeverCalledGenerator()
    )
    assert clauses == [
        ("Call 911 now.", "script", "required"),
        ("Stay on the line with me.", "script", "required"),
    ]
    assert not reply.fallback_used


async def test_disposition_with_fused_acknowledgement_and_trailing_text():
    required = "Please see a doctor within 24 hours."
    fake = ScriptedTokenStream(words("Thank you, please see a doctor within 24 hours. Take care now, okay."))
    reply, clauses = await run(FakePrompt(required, kind="disposition"), "it itches", ScriptedGenerator(fake))
    # the required sentence is verified and spoken; the model is stopped before anything after it
    assert clauses == [("Thank you, please see a doctor within 24 hours.", "llm", "required")]
    assert fake.cancelled.is_set()


def test_match_required_scores():
    assert match_required(QUESTION, QUESTION).score == 1.0
    fused = match_required("Thank you. " + QUESTION, QUESTION)
    assert fused.score == 1.0 and fused.prefix == "thank you" and fused.covers_end
    assert match_required("How long have you had this chest pain?", QUESTION).score >= 0.8
    assert match_required("Where is the pain?", QUESTION).score < 0.8
    assert not match_required("I had it for 3 days", "I had it for 2 days").critical_ok


# --- real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama():
    from voice.llm.llama_cpp_backend import LlamaCppGenerator, LlamaCppOptions

    gen = LlamaCppGenerator(options=LlamaCppOptions())
    gen.warmup()
    yield gen
    gen.close()


@pytest.mark.models
async def test_real_llm_reply_carries_the_question(llama):
    reply, clauses = await run(
        FakePrompt(QUESTION),
        "I've had this pressure in my chest since this morning.",
        llama,
        temperature=0.0,
        first_clause_deadline_ms=10_000,  # CPU shared with other work: the budget is not under test here
        total_deadline_ms=20_000,
    )
    assert not reply.fallback_used, (reply.fallback_reason, clauses)
    required = [c for c in clauses if c[2] == "required"]
    assert required and all(c[1] == "llm" for c in clauses)
    assert match_required(" ".join(c[0] for c in required), QUESTION).score >= 0.8
    acks = [c[0] for c in clauses if c[2] == "ack"]
    assert sum(len(a.split()) for a in acks) <= 12
    assert reply.ttft_ms is not None and reply.first_clause_ms is not None
    assert reply.ttft_ms <= reply.first_clause_ms


@pytest.mark.models
async def test_real_llm_missing_its_budget_falls_back(llama):
    reply, clauses = await run(FakePrompt(QUESTION), "my chest hurts", llama, first_clause_deadline_ms=1)
    assert reply.fallback_reason == "first_clause_deadline"
    assert clauses == [(QUESTION, "fallback", "required")]
    # the generation was cancelled, so the shared model is free again at once
    stream = reply.token_stream
    stats = await stream.wait_closed()
    assert stats.finish_reason == "cancelled" and stats.tokens_after_cancel <= 1


@pytest.mark.models
async def test_barge_in_stops_the_reply_and_the_model(llama):
    reply = GuardedReply(
        FakePrompt(QUESTION),
        "I've had this pressure in my chest since this morning.",
        llama,
        config=GuardrailConfig(first_clause_deadline_ms=30_000, total_deadline_ms=60_000, temperature=0.0),
        stats=None,
    )
    spoken = []
    async for clause in reply:
        spoken.append(clause)
        reply.cancel()  # the patient starts talking over the first clause
    assert len(spoken) == 1 and reply.cancelled and not reply.fallback_used
    stats = await reply.token_stream.wait_closed()
    if spoken[0].role == "ack":  # the model was still generating the question
        assert stats.finish_reason == "cancelled" and stats.tokens_after_cancel <= 1
