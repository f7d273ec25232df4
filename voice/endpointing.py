"""Turn-taking decisions: when has the patient finished (``EndpointPolicy``), and is the
speech heard over the agent a real interruption or a backchannel (``BargeInDetector``).

Both are pure, synchronous and cheap: the pipeline calls them on every frame. See
docs/voice-turn-taking.md for the policy and the measurements behind the defaults.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

# --- transcript completeness ------------------------------------------------------------


class Completion(enum.Enum):
    COMPLETE = "complete"  # sounds like a finished sentence or answer
    INCOMPLETE = "incomplete"  # trails off: filler, conjunction, preposition, open clause
    UNKNOWN = "unknown"  # no words (yet): cannot tell


HESITATIONS = frozenset(
    "um umm uh uhh uhm er erm ah eh hmm hm mm mmm well like".split() + ["you know", "i mean"]
)
CONJUNCTIONS = frozenset(
    "and but or nor so because cause cuz then than plus whereas unless although if when while "
    "which who whose where whether".split()
)
DETERMINERS = frozenset("a an the my your his our their its every each another".split())
# Prepositions that usually need an object. Particles that often end a phrasal verb in
# patients' speech ("throwing up", "passed out", "had this before") are left out.
PREPOSITIONS = frozenset(
    "about above across against among as at behind below beneath beside besides between beyond by "
    "during except for from in into near of on onto per through throughout till to toward towards "
    "under underneath until upon via with within without like".split()
)
AUXILIARIES = frozenset(
    "am is are was were be been being have has had do does did will would can could should shall "
    "may might must".split()
)
# Subjects and verbs that need a complement ("it's ...", "I feel ...", "I'm having ...").
OPEN_ENDINGS = frozenset(
    "i i'm im i've ive i'd i'll it's there's he's she's they're we're you're we they he she "
    "feel feels felt feeling seem seems seemed getting gets got having very quite extremely want "
    "wanted need needed going".split()
)
PRONOUNS = frozenset("i you he she it we they that there".split())
# "in"/"on" after these verbs is a particle that ends the phrase ("breathe in", "it kicked in").
PHRASAL_IN_ON = frozenset(
    "breathe breathing breathed come comes came coming kick kicks kicked set sets setting sink sank "
    "give gives gave giving check checked log logged move moving moved carry carried hold holding turn "
    "turned put go goes going went keep keeps kept get got".split()
)
# A clause opened by one of these is waiting for its main clause until a comma appears.
OPEN_CLAUSE_STARTERS = frozenset("if although unless whereas whether".split())
_TRAILING_OFF = ("...", "…", ",", "-", "—", "–", ":", ";")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)*(?:-[a-z0-9]+)*")


def words_of(text: str) -> list[str]:
    """Lower-cased words without punctuation ("I'm" -> "i'm", "uh-huh" stays one word)."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def classify_completion(text: str | None) -> Completion:
    """Does ``text`` sound like a finished utterance? Lexical, no model: a few µs."""
    if not text:
        return Completion.UNKNOWN
    words = words_of(text)
    if not words:
        return Completion.UNKNOWN
    last = words[-1]
    last_two = " ".join(words[-2:])
    if last in HESITATIONS or last_two in HESITATIONS:
        return Completion.INCOMPLETE
    particle = last in ("in", "on") and len(words) > 1 and words[-2] in PHRASAL_IN_ON
    if last in CONJUNCTIONS or last in DETERMINERS or last in OPEN_ENDINGS:
        return Completion.INCOMPLETE
    if last in PREPOSITIONS and not particle:
        return Completion.INCOMPLETE
    if last == "really" and (len(words) < 2 or words[-2] != "not"):
        return Completion.INCOMPLETE  # "I can't really ..." (but "not really" is an answer)
    if last in AUXILIARIES:
        # "Yes I do." / "It is." are whole short answers; "the pain is" is not.
        short_answer = len(words) <= 3 and len(words) >= 2 and words[-2] in PRONOUNS
        if not short_answer:
            return Completion.INCOMPLETE
    stripped = text.rstrip()
    if stripped.endswith(_TRAILING_OFF):
        return Completion.INCOMPLETE
    if words[0] in OPEN_CLAUSE_STARTERS and "," not in text and not stripped.endswith("?") and len(words) > 1:
        return Completion.INCOMPLETE
    return Completion.COMPLETE


# --- opening fragments ------------------------------------------------------------------
# A caller's first statement often opens with who the call is about before the complaint:
# "My son's nine," [pause] "he's got asthma, ...". Such a clause sounds finished, but
# answering it cuts the caller off (issue 12: 13 of 65 spoken calls). A transcript made only
# of these words says who, not what is wrong.
_INTRO_WORDS = frozenset(
    # greetings and discourse openers
    "hi hello hey hiya morning afternoon evening good yes yeah yep okay ok so um uh er erm well "
    "right oh sorry please thanks thank you there "
    # who the call is about
    "my our his her their me i i'm im i am it's its it this that is was he she he's she's who who's "
    "whose we we're they they're son daughter boy girl baby child kid kids toddler infant newborn "
    "husband wife partner mum mom mother mam dad father grandma grandmother granny nan nana grandad "
    "grandfather grandpa granddad gran grandmum grandmom grandson granddaughter brother sister friend neighbour neighbor aunt uncle "
    "nephew niece little youngest eldest oldest older younger one two twins patient name called "
    # calling about / age
    "calling call ringing phoning about for regarding on behalf of with just a an the and "
    "year years yr month months week weeks day days old aged age half nearly almost about "
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred".split()
)
_NUMBER = re.compile(r"^\d+(st|nd|rd|th|s)?$")


def is_opening_fragment(text: str | None, max_words: int = 10) -> bool:
    """True for a short clause that only says who the call is about or how old they are
    ("My son's nine.", "My little boy's three.", "Hi, I'm calling about my mum.", "I'm 45.").

    Lexical and deliberately narrow: one word outside that vocabulary (a symptom, a verb
    such as "has", "fell", "hurts") makes it a statement of the problem.
    """
    words = words_of(_NON_SPEECH_TEXT.sub(" ", text or ""))
    if not words or len(words) > max_words:
        return False
    for w in words:
        base = w[:-2] if w.endswith("'s") else w
        if not (base in _INTRO_WORDS or w in _INTRO_WORDS or _NUMBER.match(base)):
            return False
    return True


_NON_SPEECH_TEXT = re.compile(r"\[[^\]]*\]|\([^)]*\)")


# --- the closing clause of an open statement -------------------------------------------
# Callers string a first statement together with commas and end it on a conjoined clause:
# "My mum's eighty four, she fell this morning, and she can't put any weight on her leg."
# A clause opened by "and" / "but" that has its own verb, after a clause that already says
# what is wrong, is how such a statement closes; the clause pauses before it do not have one
# (Whisper writes a full stop at most of them: "It started on Sunday."). A list item ("and
# my back"), a filler in the clause ("and, er, he's got asthma"), a trailing number ("a
# fever of 39") or "and" after only who the call is about ("my mum's 84 and she fell") is
# not a close: those wait the full open-statement bar.
_CLOSERS = frozenset({"and", "but"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_VERBS = frozenset(
    "i'm i've i'd he's she's it's they're we're you're they've we've he'd she'd they'd "
    "is are was were has have had does do did can can't cannot won't isn't aren't wasn't doesn't "
    "don't didn't hasn't haven't couldn't wouldn't feel feels felt gets got goes went keeps kept "
    "hurts hurt says said seems looks started".split()
)
_SUBJECTS = frozenset("i he she it they we you".split())
_HEDGES = frozenset("this that these those some any".split())


def closes_statement(text: str | None) -> bool:
    """True when ``text`` ends on a conjoined clause with its own verb after a clause that
    states the problem ("..., and it gets worse after I eat."): an open statement's close."""
    if not text:
        return False
    sentences = [x for x in _SENTENCE_END.split(text.strip()) if words_of(x)]
    if not sentences:
        return False
    last = words_of(sentences[-1])
    # The last "and"/"but" that opens a clause: "and I'm feeling really weak and dizzy" closes
    # on its first "and" (the second joins two adjectives).
    for at in range(len(last) - 1, -1, -1):
        if last[at] not in _CLOSERS:
            continue
        clause = last[at + 1 :]
        if len(clause) < 2 or not _has_verb(clause):
            continue
        before = " ".join([*sentences[:-1], " ".join(last[:at])])
        if not words_of(before) or is_opening_fragment(before, max_words=12):
            return False  # "my mum's 84 and she fell": the first clause of the problem
        return not (
            any(w in HESITATIONS for w in clause)
            or clause[-1] in _HEDGES
            or clause[-1] in _NUMBER_WORDS
            or _NUMBER.match(clause[-1])
        )
    return False


def _has_verb(clause: list[str]) -> bool:
    return any(w in _CLAUSE_VERBS for w in clause) or any(
        w in _SUBJECTS and i + 1 < len(clause) for i, w in enumerate(clause)
    )


_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
    "sixty seventy eighty ninety hundred".split()
)


SHORT_ANSWERS = frozenset(
    "yes no yeah yep yup nope nah okay ok sure correct right never always sometimes".split()
    + ["not really", "i don't know", "i'm not sure", "yes please", "no thanks", "no thank you"]
)


def is_short_answer(text: str | None) -> bool:
    words = words_of(text or "")
    return bool(words) and " ".join(words) in SHORT_ANSWERS


# --- end of turn ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    # Silence that ends an answer whose words sound complete and whose last word is sure: as
    # soon as its words are back at the pause (the segmenter's 200 ms hangover + the decode),
    # as a bare yes/no does. 350 ms before 2026-12-02: the socket bench's telemetry showed the
    # reply ready at the endpoint and the wait itself as the answers' response onset; the
    # endpointing evaluation's hesitant (0 / 50), hard (6 / 8) and fluent (0 / 16) answers
    # are unchanged by it (docs/voice-turn-taking.md section 2).
    complete_silence_ms: float = 200.0
    # Whisper tends to "finish" a sentence cut at a hesitation with a guessed word
    # ("in my" -> "in mind."); such guesses come with a low probability. A complete-looking
    # transcript whose last word is below ``min_last_word_prob`` needs this longer silence.
    uncertain_silence_ms: float = 800.0
    min_last_word_prob: float = 0.9
    # A bare "yes" / "no" is the most common answer and often scores lower; a filler
    # misheard as "yeah" scores far lower still (~0.1), so the bar is lower for them.
    min_short_answer_prob: float = 0.5
    long_silence_ms: float = 1300.0  # silence that ends any turn (hesitation or not)
    # An open statement (the first one of the call, or the answer to an open question such as
    # "what's happening?") runs on over clause pauses: "My son's nine, [600 ms] he's got
    # asthma, [800 ms] since his cold ...". A complete-sounding clause there needs this
    # longer silence, and a clause that only says who the call is about
    # (``is_opening_fragment``) never ends the turn before ``long_silence_ms``. Whisper writes
    # a full stop at most clause pauses ("It started on Sunday." [700 ms] "it's a sharp
    # pain ..."), so only the pause length tells them from the end: realistic clause pauses
    # run to 900 ms (evals.voice.endpointing, "realistic").
    open_complete_silence_ms: float = 1000.0
    # ... unless the statement has reached its closing clause (``closes_statement``: "...,
    # and it gets worse after I eat."): then this much silence ends it (issue 12, response
    # onset), measured on the realistic and hesitant sets of evals.voice.endpointing.
    open_closing_silence_ms: float = 500.0  # 600 ms before 2026-12-02 (same evaluation: 0 / 50, 0 / 16)
    # An answer Whisper wrote with a trailing comma though its words are whole ("About two
    # days,", "Since last night,"): it waited the long-silence bar (1.3 s; the socket bench's
    # slowest answers). Its last word must be sure; fillers, conjunctions etc. still wait.
    comma_answer_silence_ms: float = 800.0
    # A bare "yes" / "no" answering a closed question ends the turn as soon as its transcript
    # is back (the segmenter's 200 ms hangover + the decode): the most common answer, and the
    # one where a person replies fastest.
    short_answer_silence_ms: float = 200.0
    max_turn_ms: float = 30_000.0  # cap on one turn, silence or not (Whisper windows are 30 s)


@dataclass(frozen=True, slots=True)
class EndpointDecision:
    end: bool
    # end: complete_sentence / complete_uncertain / complete_comma / long_silence / max_turn;
    # wait: speaking / incomplete / unknown / uncertain / complete (silence still short)
    reason: str
    completion: Completion


class EndpointPolicy:
    """Decides end of turn from the silence so far and the freshest transcript.

    ``transcript`` must describe the audio up to the current pause (a speculative final
    decoded after the pause began); pass ``None`` while that decode is still running: a
    stale partial that lacks the last words could look complete and cut the patient off.
    """

    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()

    def decide(
        self,
        *,
        silence_ms: float,
        transcript: str | None,
        turn_ms: float = 0.0,
        last_word_prob: float | None = None,
        open_statement: bool = False,
    ) -> EndpointDecision:
        """``last_word_prob``: ASR probability of the transcript's last word, if known.
        ``open_statement``: the caller is describing the problem (first statement of the
        call, or an answer to an open question), not answering a closed question."""
        cfg = self.config
        completion = classify_completion(transcript)
        if turn_ms >= cfg.max_turn_ms:
            return EndpointDecision(True, "max_turn", completion)
        if silence_ms <= 0:
            return EndpointDecision(False, "speaking", completion)
        if silence_ms >= cfg.long_silence_ms:
            return EndpointDecision(True, "long_silence", completion)
        if completion is Completion.COMPLETE:
            if open_statement and is_opening_fragment(transcript):
                return EndpointDecision(False, "opening_fragment", completion)
            bar = cfg.min_short_answer_prob if is_short_answer(transcript) else cfg.min_last_word_prob
            sure = last_word_prob is None or last_word_prob >= bar
            if open_statement:
                # Only a sure last word may close early: a guess ("and it's her.") waits.
                closing = sure and closes_statement(transcript)
                sure_ms = cfg.open_closing_silence_ms if closing else cfg.open_complete_silence_ms
            elif is_short_answer(transcript):
                sure_ms = min(cfg.short_answer_silence_ms, cfg.complete_silence_ms)
            else:
                sure_ms = cfg.complete_silence_ms
            if silence_ms >= (sure_ms if sure else max(sure_ms, cfg.uncertain_silence_ms)):
                return EndpointDecision(
                    True, "complete_sentence" if sure else "complete_uncertain", completion
                )
            if not sure:
                return EndpointDecision(False, "uncertain", completion)
        elif (
            not open_statement
            and silence_ms >= cfg.comma_answer_silence_ms
            and _comma_only(transcript)
            and (last_word_prob is None or last_word_prob >= cfg.min_last_word_prob)
        ):
            # "About two days," - Whisper's trailing comma on a short answer whose words are
            # whole: a weak cue, so the uncertain bar rather than the long-silence one.
            return EndpointDecision(True, "complete_comma", completion)
        return EndpointDecision(False, completion.value, completion)


def _comma_only(text: str | None) -> bool:
    """True when ``text`` is incomplete only because it ends on a comma."""
    stripped = (text or "").rstrip()
    return stripped.endswith(",") and classify_completion(stripped.rstrip(",") + ".") is Completion.COMPLETE


# --- backchannels and barge-in ----------------------------------------------------------

BACKCHANNELS = frozenset(
    "uh-huh uh huh uhhuh mhm mm-hmm mmhmm mm-hm mm hmm hm mmm um uh ah oh okay ok k yeah yep yup yes "
    "ya right alright sure cool fine good great thanks thank you i see got it gotcha aha ah-ha".split()
    # What Whisper writes for a closed-mouth hum: "Mm." decodes as a confident "Amen." (log-prob
    # -0.28 in make bench, 2026-11-24), which read as words and cut the agent off.
    + "amen ahem mhmm hmmm mmhm".split()
    # Acknowledgements that are whole words: a one-word partial of a content word now
    # interrupts (``is_content_word``), so these must be known as listener feedback.
    + "exactly absolutely perfect lovely brilliant indeed wow ooh".split()
)
# Whisper writes non-speech as "[cough]", "(coughing)", "*sighs*", or a lone "♪".
_NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]")


def is_backchannel(text: str | None, max_words: int = 4) -> bool:
    """True for listener noises that must not interrupt the agent.

    "uh-huh", "okay", "mm", "yeah right", "thank you", a cough (Whisper returns an empty or
    bracketed non-word transcript for it) -> True. "no", "wait", "stop", "I can't breathe"
    -> False. Long runs ("yeah yeah okay right sure") stop counting after ``max_words``.
    """
    if text is None:
        return True
    words = words_of(_NON_SPEECH.sub(" ", text))
    if not words:
        return True
    return len(words) <= max_words and all(w in BACKCHANNELS for w in words)


def reliable_words(
    text: str, avg_logprob: float, no_speech_prob: float, *, min_logprob: float, max_no_speech: float
) -> str:
    """What the barge-in gate may treat as words. Whisper "transcribes" hums and coughs with
    made-up words at low confidence ("Mm." -> "Amen.", a cough -> "Okay," at no-speech 0.76),
    while real short interruptions decode with more confidence: below the floor the burst
    counts as no words (like a cough)."""
    if avg_logprob < min_logprob or no_speech_prob > max_no_speech:
        return ""
    return text


# First words that mean "the caller is taking the turn": one of these alone in an early
# partial is enough to interrupt. Other single words in a partial of a burst still going on
# are not trusted (Whisper turns the start of a hum into "And" or "The").
INTERRUPT_OPENERS = frozenset(
    "wait stop no nope sorry excuse pardon hold hang hey hello actually but what why how where "
    "when who can could please listen sorry help".split()
)


# Words that say nothing alone at the start of a burst over the agent: a hum's hallucinated
# "And" or "The", or the first word of what may still be "I see" / "oh right".
_FUNCTION_WORDS = (
    CONJUNCTIONS | DETERMINERS | PREPOSITIONS | AUXILIARIES | PRONOUNS | HESITATIONS | OPEN_ENDINGS
) | frozenset("this these those some any me him her them us".split())


def is_content_word(word: str) -> bool:
    """A word that is the caller taking the turn even alone in an early partial ("Pain",
    "Doctor", "Tuesday"): three letters or more, not a function word, not listener feedback.
    Its decode passed the confidence floor (``reliable_words``); the first syllable's unsure
    guesses ("Exact," for "Excuse", "Action," for "Actually") do not."""
    return len(word) >= 3 and word.isalpha() and word not in _FUNCTION_WORDS and word not in BACKCHANNELS


@dataclass(frozen=True, slots=True)
class BargeInConfig:
    min_speech_ms: float = 600.0  # voiced speech without any words heard -> interrupt
    max_backchannel_ms: float = 1500.0  # a "backchannel" this long is someone talking over us
    backchannel_words: int = 4
    # A short burst whose partials heard no reliable word ("Mm-hmm" -> "NMR." at -1.2, a cough,
    # a hum) is listener noise once the voice stops, like a heard "okay" (``heard_no_words``);
    # longer than this it waits for the decode of the whole burst.
    no_words_max_ms: float = 600.0


@dataclass
class BargeInDetector:
    """Onset gate for barge-in while the agent is speaking.

    Per overlapping speech burst: call :meth:`reset` at its ``SpeechStarted``, then
    :meth:`update` on every frame (voiced time so far) and whenever a partial transcript
    of the burst arrives. It returns True exactly once, when the burst becomes a real
    interruption:

    - a partial with real words ("no wait", "I can't breathe") -> at once; a one-word
      partial of a burst still going on only if the word opens an interruption ("Wait",
      "Stop", "Sorry": ``INTERRUPT_OPENERS``) or is a content word ("Pain":
      ``is_content_word``), not a function word ("And", "I"); the final decode of a burst
      (``final=True``) counts any real word;
    - no partial yet (ASR behind) -> after ``min_speech_ms`` of voiced speech;
    - a backchannel partial ("uh-huh", "okay", "yeah") or one with no words (a cough,
      noise) -> only if the burst goes on for ``max_backchannel_ms``.
    """

    config: BargeInConfig = field(default_factory=BargeInConfig)
    declared: bool = False
    reason: str | None = None
    _heard_backchannel: bool = False
    _empty_decodes: int = 0  # partials of this burst with no reliable word
    _voiced_ms: float = 0.0

    def reset(self) -> None:
        self.declared = False
        self.reason = None
        self._heard_backchannel = False
        self._empty_decodes = 0
        self._voiced_ms = 0.0

    @property
    def heard_backchannel(self) -> bool:
        """A decode of this burst heard only listener noise so far."""
        return self._heard_backchannel and not self.declared

    @property
    def heard_no_words(self) -> bool:
        """Partials of this short burst heard no reliable word at all (a hum, "mm-hmm", a
        cough): once the voice stops it is let go like a backchannel; the decode of the whole
        burst can still declare an interruption."""
        return (
            self._empty_decodes > 0
            and not self._heard_backchannel
            and not self.declared
            and self._voiced_ms <= self.config.no_words_max_ms
        )

    def update(self, *, voiced_ms: float, partial_text: str | None = None, final: bool = True) -> bool:
        """``final``: ``partial_text`` decodes the whole burst (it has paused); False for a
        partial of a burst still going on, whose last word may be a guess."""
        if self.declared:
            return False
        cfg = self.config
        self._voiced_ms = voiced_ms
        if partial_text is not None:
            # An empty partial means ASR heard no words (noise, a cough): same as a backchannel.
            if not is_backchannel(partial_text, cfg.backchannel_words):
                words = words_of(_NON_SPEECH.sub(" ", partial_text))
                if final or len(words) >= 2:
                    return self._declare("words")
                if words[0] in INTERRUPT_OPENERS or is_content_word(words[0]):
                    return self._declare("first_word")
                # one function word ("And" from a hum, "I"): wait for the next decode or the
                # duration rule
            elif final or words_of(_NON_SPEECH.sub(" ", partial_text)):
                self._heard_backchannel = True
            else:
                # A partial with no words says little while the burst goes on (it may have
                # barely begun); once the voice stops it is a hum or a cough (heard_no_words).
                self._empty_decodes += 1
        limit = cfg.max_backchannel_ms if self._heard_backchannel else cfg.min_speech_ms
        if voiced_ms >= limit:
            return self._declare("long_backchannel" if self._heard_backchannel else "duration")
        return False

    def _declare(self, reason: str) -> bool:
        self.declared = True
        self.reason = reason
        return True
