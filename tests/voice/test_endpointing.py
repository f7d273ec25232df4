from __future__ import annotations

import pytest

from voice.endpointing import (
    BargeInConfig,
    BargeInDetector,
    Completion,
    EndpointConfig,
    EndpointPolicy,
    classify_completion,
    closes_statement,
    is_backchannel,
    is_content_word,
    is_opening_fragment,
)

C, INC, U = Completion.COMPLETE, Completion.INCOMPLETE, Completion.UNKNOWN


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have a pain in my chest.", C),
        ("Yes.", C),
        ("No, I don't have any allergies.", C),
        ("It started yesterday evening", C),
        ("I've been throwing up", C),  # phrasal particle, not a preposition
        ("It hurts when I breathe in.", C),
        ("The pain kicked in", C),
        ("I have a pain in", INC),
        ("Not really.", C),
        ("Yes I do.", C),  # short answer ending in an auxiliary
        ("Is it serious?", C),
        ("I have a pain in my", INC),
        ("I have a pain in my...", INC),
        ("Um", INC),
        ("uh", INC),
        ("Um...", INC),
        ("I took some ibuprofen but", INC),
        ("and", INC),
        ("because", INC),
        ("so", INC),
        ("It's been about", INC),
        ("The pain goes down the", INC),
        ("I think it's", INC),
        ("My chest feels", INC),
        ("I've been feeling", INC),
        ("The pain is", INC),
        ("I can't really", INC),
        ("I have a fever,", INC),
        ("If I walk up the stairs", INC),
        ("If I walk up the stairs, I get short of breath.", C),
        ("It feels like, you know", INC),
        ("", U),
        (None, U),
        ("...", U),
    ],
)
def test_classify_completion(text, expected):
    assert classify_completion(text) is expected


def test_complete_sentence_ends_after_short_silence():
    policy = EndpointPolicy()
    text = "I have a pain in my chest."
    assert not policy.decide(silence_ms=180, transcript=text).end  # 200 ms since 2026-12-02 (350 before)
    decision = policy.decide(silence_ms=400, transcript=text)
    assert decision.end and decision.reason == "complete_sentence"


def test_a_sure_complete_answer_ends_as_soon_as_its_words_are_back():
    """Default bars (2026-12-02): an answer whose words sound complete and whose last word is
    sure ends at the pause (200 ms, as a bare yes/no); a guessed last word still waits 800 ms,
    unfinished words the long silence, and an open statement its own longer bars."""
    policy = EndpointPolicy()
    answer = "No, nothing like that."
    ends = policy.decide(silence_ms=200, transcript=answer, last_word_prob=0.95)
    assert ends.end and ends.reason == "complete_sentence"
    assert not policy.decide(silence_ms=780, transcript=answer, last_word_prob=0.6).end
    assert policy.decide(silence_ms=800, transcript=answer, last_word_prob=0.6).reason == "complete_uncertain"
    assert not policy.decide(silence_ms=1200, transcript="It's been about", last_word_prob=0.99).end
    statement = "I've had a headache since this morning."
    assert not policy.decide(
        silence_ms=990, transcript=statement, last_word_prob=0.99, open_statement=True
    ).end
    closing = "My mum's 84, she fell this morning, and she can't put any weight on her leg."
    assert not policy.decide(silence_ms=480, transcript=closing, last_word_prob=0.97, open_statement=True).end
    assert policy.decide(silence_ms=500, transcript=closing, last_word_prob=0.97, open_statement=True).end


@pytest.mark.parametrize("text", ["I have a pain in my", "Um", "and", "because", "It started when I was"])
def test_hesitation_waits_for_the_long_silence(text):
    policy = EndpointPolicy()
    for silence in (400, 700, 1000, 1290):
        decision = policy.decide(silence_ms=silence, transcript=text)
        assert not decision.end and decision.reason == "incomplete"
    decision = policy.decide(silence_ms=1300, transcript=text)
    assert decision.end and decision.reason == "long_silence"


def test_no_fresh_transcript_only_ends_on_long_silence():
    policy = EndpointPolicy()
    assert policy.decide(silence_ms=900, transcript=None).reason == "unknown"
    assert policy.decide(silence_ms=1300, transcript=None).end


def test_guessed_last_word_needs_a_longer_silence():
    policy = EndpointPolicy()
    guess = "The pain goes down, Mike."  # tiny.en finishing "The pain goes down my ..."
    assert not policy.decide(silence_ms=500, transcript=guess, last_word_prob=0.66).end
    assert policy.decide(silence_ms=500, transcript=guess, last_word_prob=0.66).reason == "uncertain"
    late = policy.decide(silence_ms=800, transcript=guess, last_word_prob=0.66)
    assert late.end and late.reason == "complete_uncertain"
    assert policy.decide(silence_ms=400, transcript="I have a pain in my chest.", last_word_prob=0.99).end


def test_short_answers_have_a_lower_confidence_bar():
    policy = EndpointPolicy()
    assert policy.decide(silence_ms=400, transcript="Yes.", last_word_prob=0.7).end
    assert not policy.decide(silence_ms=400, transcript="Yeah.", last_word_prob=0.14).end  # a misheard "uh"


def test_max_turn_and_configurable_thresholds():
    policy = EndpointPolicy(EndpointConfig(complete_silence_ms=300, long_silence_ms=1000, max_turn_ms=5000))
    assert policy.decide(silence_ms=300, transcript="Yes.").end
    assert policy.decide(silence_ms=1000, transcript="and").end
    speaking = policy.decide(silence_ms=0, transcript="and so on and", turn_ms=5000)
    assert speaking.end and speaking.reason == "max_turn"
    assert policy.decide(silence_ms=0, transcript="Yes.", turn_ms=100).reason == "speaking"


# --- backchannels and barge-in ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "uh-huh",
        "Uh-huh.",
        "okay",
        "OK.",
        "mm",
        "Mm-hmm.",
        "yeah",
        "Yeah, right.",
        "right",
        "",
        "  ",
        None,
        "[cough]",
        "(coughing)",
        "*sighs*",
        "Thank you.",
        "I see.",
        "Amen.",  # Whisper's confident transcript of a hum ("Mm.")
    ],
)
def test_backchannels(text):
    assert is_backchannel(text)


@pytest.mark.parametrize(
    "text", ["no", "wait", "stop", "I can't breathe", "Sorry, I meant my left arm", "yeah but it hurts"]
)
def test_not_backchannels(text):
    assert not is_backchannel(text)


def test_long_runs_of_backchannel_words_are_talk():
    assert is_backchannel("yeah yeah okay")
    assert not is_backchannel("yeah yeah okay right sure")


def test_barge_in_on_words_immediately():
    gate = BargeInDetector()
    assert not gate.update(voiced_ms=100)
    assert gate.update(voiced_ms=160, partial_text="Wait, I")
    assert gate.declared and gate.reason == "words"
    assert not gate.update(voiced_ms=400, partial_text="Wait, I have"), "declared only once"


def test_barge_in_on_duration_without_words():
    gate = BargeInDetector(BargeInConfig(min_speech_ms=600))
    assert not gate.update(voiced_ms=580)
    assert gate.update(voiced_ms=600)
    assert gate.reason == "duration"


def test_backchannel_does_not_barge_in_unless_it_goes_on():
    gate = BargeInDetector(BargeInConfig(min_speech_ms=600, max_backchannel_ms=1500))
    assert not gate.update(voiced_ms=300, partial_text="uh-huh")
    assert not gate.update(voiced_ms=800), "a heard backchannel raises the bar above min_speech_ms"
    assert not gate.update(voiced_ms=1400, partial_text="")  # a cough: no words
    assert gate.update(voiced_ms=1500)
    assert gate.reason == "long_backchannel"
    gate.reset()
    assert not gate.declared
    assert gate.update(voiced_ms=100, partial_text="okay so actually the pain moved")


@pytest.mark.parametrize(
    "text",
    [
        "My son's nine.",
        "My little boy's three.",
        "Hi, I'm calling about my mum.",
        "I'm 45.",
        "It's my husband, he's seventy.",
        "My daughter is six months old.",
        "Um, my granddad's eighty.",
    ],
)
def test_opening_fragments_say_who_not_what(text):
    assert is_opening_fragment(text)


@pytest.mark.parametrize(
    "text",
    [
        "My son's nine, he's got asthma.",
        "My son is nine and he has a fever.",
        "My mum fell.",
        "I have a headache.",
        "",
        "My son's nine and he's been wheezing since his cold, and he's using his inhaler a lot.",
    ],
)
def test_statements_of_a_problem_are_not_opening_fragments(text):
    assert not is_opening_fragment(text)


def test_open_statement_waits_through_an_opening_fragment():
    policy = EndpointPolicy()
    frag = "My son's nine."
    assert policy.decide(silence_ms=400, transcript=frag, last_word_prob=0.99).end, "as an answer it ends"
    waiting = policy.decide(silence_ms=1000, transcript=frag, last_word_prob=0.99, open_statement=True)
    assert not waiting.end and waiting.reason == "opening_fragment"
    assert policy.decide(silence_ms=1300, transcript=frag, open_statement=True).reason == "long_silence"


def test_open_statement_needs_a_longer_pause_after_a_complete_clause():
    policy = EndpointPolicy(EndpointConfig(complete_silence_ms=350, open_complete_silence_ms=600))
    text = "He's had a temperature since yesterday."
    assert policy.decide(silence_ms=350, transcript=text, last_word_prob=0.97).end
    assert not policy.decide(silence_ms=550, transcript=text, last_word_prob=0.97, open_statement=True).end
    ends = policy.decide(silence_ms=600, transcript=text, last_word_prob=0.97, open_statement=True)
    assert ends.end and ends.reason == "complete_sentence"
    # a guessed last word waits the longer of the two bars
    assert not policy.decide(silence_ms=700, transcript=text, last_word_prob=0.3, open_statement=True).end


@pytest.mark.parametrize(
    "text",
    [
        "It started on Sunday. It's a sharp pain under my ribs on the right, and it gets worse after I eat.",
        "My mum's 84, she fell in the kitchen this morning, and she can't put any weight on her leg.",
        "I'm 24. I've had diarrhea since Tuesday, and I'm feeling really weak and dizzy.",
        "My daughter's three, she's had a temperature since yesterday, but she's drinking.",
        "My baby's two weeks old. She's very sleepy. She's not feeding well. And she feels hot.",
    ],
)
def test_a_conjoined_clause_with_its_own_verb_closes_an_open_statement(text):
    assert closes_statement(text)


@pytest.mark.parametrize(
    "text",
    [
        "It started on Sunday.",  # a clause pause: Whisper writes a full stop there too
        "My son's nine, he's got asthma.",
        "I've got a rash on my arms, my legs, and my back.",  # a list item, no verb
        "I've got a cough and a sore throat and a temperature.",
        "Well, my mum's 84 and she fell this morning.",  # "and" after only who it is about
        "I cut my hand, and, er, it's bleeding.",  # a filler in the clause
        "He's got asthma and he's had a fever of 39.",  # a trailing number: "39 and a half"
        "I've got diabetes and I've had this.",  # a trailing "this": "this pain in my foot"
        "",
    ],
)
def test_other_clauses_do_not_close_an_open_statement(text):
    assert not closes_statement(text)


def test_an_open_statement_closes_sooner_on_its_closing_clause():
    policy = EndpointPolicy(EndpointConfig(open_complete_silence_ms=1000, open_closing_silence_ms=600))
    closing = "My mum's 84, she fell this morning, and she can't put any weight on her leg."
    middle = "My mum's 84, she fell this morning."
    assert not policy.decide(silence_ms=550, transcript=closing, last_word_prob=0.97, open_statement=True).end
    ends = policy.decide(silence_ms=600, transcript=closing, last_word_prob=0.97, open_statement=True)
    assert ends.end and ends.reason == "complete_sentence"
    assert not policy.decide(silence_ms=900, transcript=middle, last_word_prob=0.97, open_statement=True).end
    assert policy.decide(silence_ms=1000, transcript=middle, last_word_prob=0.97, open_statement=True).end
    # a guessed last word ("and it's her." for "and it's, er, ...") waits the full open bar
    guess = "I cut my hand and it's her."
    assert not policy.decide(silence_ms=900, transcript=guess, last_word_prob=0.24, open_statement=True).end


def test_an_answer_with_only_a_trailing_comma_ends_at_the_uncertain_bar():
    policy = EndpointPolicy(EndpointConfig(comma_answer_silence_ms=800, long_silence_ms=1300))
    answer = "About two days,"  # Whisper's comma; the words are a whole answer
    assert not policy.decide(silence_ms=750, transcript=answer, last_word_prob=0.98).end
    ends = policy.decide(silence_ms=800, transcript=answer, last_word_prob=0.98)
    assert ends.end and ends.reason == "complete_comma"
    # the words themselves unfinished, a guessed last word, or an open statement: still waits
    assert not policy.decide(silence_ms=1200, transcript="I have a pain in my,", last_word_prob=0.98).end
    assert not policy.decide(silence_ms=1200, transcript="Um,", last_word_prob=0.98).end
    assert not policy.decide(silence_ms=1200, transcript=answer, last_word_prob=0.4).end
    assert not policy.decide(silence_ms=1200, transcript=answer, last_word_prob=0.98, open_statement=True).end


def test_one_word_partial_interrupts_only_if_it_opens_an_interruption():
    gate = BargeInDetector()
    assert not gate.update(voiced_ms=300, partial_text="And", final=False), "a lone guessed word waits"
    assert not gate.heard_backchannel and not gate.declared
    assert gate.update(voiced_ms=340, partial_text="Wait", final=False)
    assert gate.reason == "first_word"
    gate.reset()
    assert gate.update(voiced_ms=300, partial_text="Knee.", final=True), "the burst's own final decode counts"
    assert gate.reason == "words"


def test_a_lone_content_word_in_a_partial_interrupts_but_a_function_word_waits():
    """One word of a burst still going on is enough when it says something ("Pain", "Doctor"),
    not when it is a hum's hallucinated "And", the "I" of "I see", or listener feedback."""
    for word in ("Pain.", "Doctor", "Tuesday,", "breathing"):
        gate = BargeInDetector()
        assert gate.update(voiced_ms=200, partial_text=word, final=False), word
        assert gate.reason == "first_word"
    for word in ("And", "I", "The", "My", "It's", "Perfect.", "Exactly.", "Mm-hmm.", "This", "Ex-c-c-c"):
        gate = BargeInDetector()
        assert not gate.update(voiced_ms=200, partial_text=word, final=False), word
        assert not gate.declared
    assert is_content_word("knee") and not is_content_word("me") and not is_content_word("and")
    assert is_backchannel("Perfect.") and is_backchannel("Lovely, exactly.")


def test_backchannel_heard_in_a_partial_is_remembered_for_a_fast_resume():
    gate = BargeInDetector(BargeInConfig(min_speech_ms=600, max_backchannel_ms=1500))
    assert not gate.update(voiced_ms=200, partial_text="", final=False)
    assert not gate.heard_backchannel, "an empty early partial says nothing yet"
    assert not gate.update(voiced_ms=300, partial_text="Uh-huh.", final=False)
    assert gate.heard_backchannel
    assert not gate.update(voiced_ms=700), "the duration bar is raised"
    assert gate.update(voiced_ms=500, partial_text="Uh-huh, but my knee", final=False)
    assert not gate.heard_backchannel


def test_a_short_burst_with_no_reliable_word_is_let_go_like_a_backchannel():
    gate = BargeInDetector(BargeInConfig(min_speech_ms=800, no_words_max_ms=600))
    assert not gate.update(voiced_ms=200)
    assert not gate.heard_no_words, "no decode yet"
    assert not gate.update(voiced_ms=240, partial_text="", final=False)  # "NMR." below the floor
    assert gate.heard_no_words and not gate.heard_backchannel
    assert not gate.update(voiced_ms=700)
    assert not gate.heard_no_words, "too long for a hum: the decode of the whole burst decides"
    gate.reset()
    assert not gate.update(voiced_ms=240, partial_text="", final=False)
    assert gate.update(voiced_ms=300, partial_text="Stop.", final=True), "the burst's decode still cancels"
    assert not gate.heard_no_words


def test_a_bare_yes_or_no_answer_ends_as_soon_as_its_words_are_back():
    policy = EndpointPolicy(EndpointConfig(complete_silence_ms=350, short_answer_silence_ms=200))
    assert policy.decide(silence_ms=220, transcript="No.", last_word_prob=0.8).end
    assert not policy.decide(silence_ms=220, transcript="No, it started yesterday.", last_word_prob=0.99).end
    assert not policy.decide(silence_ms=220, transcript="Yeah.", last_word_prob=0.1).end, "a guessed 'yeah'"


# --- evaluation with the real chain -------------------------------------------------------


@pytest.mark.models
def test_endpointing_on_hesitant_speech_with_real_asr(utterance_with_pauses, tiny_recognizer):
    """Real Piper speech, VAD, segmenter and tiny.en, with ASR latency modelled as 100 ms
    (the hardest case for cut-offs: the transcript is back while the pause is young)."""
    import functools

    from evals.voice.endpointing import simulate
    from voice.vad import SegmenterConfig

    transcribe = functools.partial(tiny_recognizer.transcribe, word_timestamps=True)
    kw = dict(policy=EndpointPolicy(), segmenter_config=SegmenterConfig(), asr_latency_s=0.1)

    hesitant = simulate(utterance_with_pauses("I have a pain in my", 600, "chest."), transcribe, **kw)
    assert not hesitant.false_cutoff
    assert hesitant.reason == "complete_sentence"
    assert 300 <= hesitant.delay_ms <= 700

    filler = simulate(utterance_with_pauses("Um,", 700, "I think it started yesterday."), transcribe, **kw)
    assert not filler.false_cutoff and filler.delay_ms <= 700
