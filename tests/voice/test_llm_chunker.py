"""ClauseChunker: clause boundaries from a token stream (pure logic, no model)."""

import pytest

from voice.llm.chunker import ClauseChunker, split_clauses


def feed_all(chunker: ClauseChunker, pieces: list[str]) -> list[tuple[int, str]]:
    """(index of the piece after which the clause came out, clause); flush is index len(pieces)."""
    out = []
    for i, piece in enumerate(pieces):
        out += [(i, c) for c in chunker.feed(piece)]
    if (rest := chunker.flush()) is not None:
        out.append((len(pieces), rest))
    return out


def test_first_clause_leaves_as_soon_as_the_next_piece_confirms_it():
    pieces = ["I'm", " sorry", " to", " hear", " that", ".", " How", " long", " has", " it", " been", "?"]
    out = feed_all(ClauseChunker(), pieces)
    # the "." arrives at index 5 and is confirmed by the space of " How" (index 6), not at the end
    assert out[0] == (6, "I'm sorry to hear that.")
    assert out[1] == (len(pieces), "How long has it been?")


def test_question_and_exclamation_end_clauses():
    assert split_clauses("Oh no! Are you safe? Please stay on the line.") == [
        "Oh no!",
        "Are you safe?",
        "Please stay on the line.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Your temperature was 38.5 degrees this morning",
        "Take note of it at 10:30 tonight please",
        "That is about 1,000 steps from here",
        "Version 3.5.1 of the form is fine",
    ],
)
def test_numbers_are_never_split(text):
    # fed one character at a time, so every "." / ":" / "," is seen before what follows it
    chunker = ClauseChunker(min_clause_words=1)
    out = [c for ch in text for c in chunker.feed(ch)]
    assert out == []
    assert chunker.flush() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith will call you back. Okay?", ["Dr. Smith will call you back.", "Okay?"]),
        (
            "Bring your list, e.g. the inhaler box. Thanks.",
            ["Bring your list, e.g. the inhaler box.", "Thanks."],
        ),
        ("Mrs. Jones and J. Smith are here. Good.", ["Mrs. Jones and J. Smith are here.", "Good."]),
        ("It started at 9 a.m. yesterday. Right.", ["It started at 9 a.m. yesterday.", "Right."]),
        ("Bring towels, blankets, etc. They help.", ["Bring towels, blankets, etc.", "They help."]),
    ],
)
def test_abbreviations_do_not_end_sentences(text, expected):
    chunker = ClauseChunker(min_clause_words=99)  # sentence ends only
    out = [c for piece in text.split(" ") for c in chunker.feed(piece + " ")]
    if (rest := chunker.flush()) is not None:
        out.append(rest)
    assert out == expected


def test_comma_clause_needs_min_words():
    pieces = "Okay, thank you for telling me all of that, how long has it hurt?".split(" ")
    pieces = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
    short = feed_all(ClauseChunker(min_clause_words=4), pieces)
    assert [c for _, c in short] == ["Okay, thank you for telling me all of that,", "how long has it hurt?"]
    long = feed_all(ClauseChunker(min_clause_words=20), pieces)
    assert [c for _, c in long] == ["Okay, thank you for telling me all of that, how long has it hurt?"]


def test_semicolon_and_colon_clauses():
    assert split_clauses("Here is what to do next: stay seated; keep the phone close to you.") == [
        "Here is what to do next:",
        "stay seated; keep the phone close to you.",
    ]


def test_flush_returns_the_unfinished_remainder_once():
    chunker = ClauseChunker()
    assert chunker.feed("Thank you. And how are you") == ["Thank you."]
    assert chunker.flush() == "And how are you"
    assert chunker.flush() is None


def test_closing_quotes_stay_with_their_clause():
    assert split_clauses('She said "stop." Then she left.') == ['She said "stop."', "Then she left."]


def test_newline_ends_a_clause():
    assert split_clauses("First line without stop\nsecond line") == ["First line without stop", "second line"]
