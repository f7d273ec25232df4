"""Numbers, durations, ages, temperatures, pain scores and yes/no/unsure from free speech.

Works on normalised tokens (see text.py). Vocabulary that is clinical or locale-specific (answer
phrases, quantities such as "a couple of", duration anchors such as "since yesterday") comes
from the rule set's lexicon; only English number words live here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .ruleset import AnswerLexicon
from .text import Tokens

_UNITS = {
    "zero": 0, "oh": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_ORDINAL_FRACTIONS = {"half": 0.5, "quarter": 0.25}


@dataclass(frozen=True, slots=True)
class Value:
    value: float
    start: int  # token span of the words that gave it
    end: int


_NUM_RE = re.compile(r"^\d+(?:\.\d+)?$")
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | {"a", "hundred"}


def _is_num(w: str) -> bool:
    return bool(_NUM_RE.match(w))


def parse_number(words: Sequence[str], i: int) -> Value | None:
    """A number starting at token ``i``: "38.5", "thirty eight point five", "a hundred and two",
    "two and a half", "seventy-two" (hyphens are already split)."""
    n = len(words)
    if i >= n:
        return None
    w = words[i]
    if _is_num(w):
        val, j = float(w), i + 1
    elif (
        w in _UNITS
        or w in _TENS
        or w == "hundred"
        or (w in ("a", "one") and i + 1 < n and words[i + 1] == "hundred")
    ):
        val, j = 0.0, i
        if words[j] in ("a", "one") and j + 1 < n and words[j + 1] == "hundred":
            val, j = 100.0, j + 2
            if j < n and words[j] == "and":
                j += 1
        elif words[j] in _UNITS and j + 1 < n and words[j + 1] == "hundred":
            val, j = 100.0 * _UNITS[words[j]], j + 2
            if j < n and words[j] == "and":
                j += 1
        if j < n and words[j] in _TENS:
            val += _TENS[words[j]]
            j += 1
            if j < n and words[j] in _UNITS and 0 < _UNITS[words[j]] < 10:
                val += _UNITS[words[j]]
                j += 1
        elif j < n and words[j] in _UNITS:
            val += _UNITS[words[j]]
            j += 1
        if j == i:
            return None
        # "thirty eight point five"
        if j + 1 < n and words[j] == "point" and (words[j + 1] in _UNITS or _is_num(words[j + 1])):
            frac = words[j + 1]
            digit = _UNITS[frac] if frac in _UNITS else float(frac)
            val += float(f"0.{int(digit)}") if digit < 10 else 0.0
            j += 2
    else:
        return None
    # "two and a half"
    if j + 2 < n and words[j] == "and" and words[j + 1] == "a" and words[j + 2] in _ORDINAL_FRACTIONS:
        val += _ORDINAL_FRACTIONS[words[j + 2]]
        j += 3
    return Value(val, i, j)


_numbers_cache: dict[tuple[str, ...], list[Value]] = {}


def numbers(words: Sequence[str]) -> list[Value]:
    """All numbers in ``words`` (memoised for the last few token sequences: several parsers ask)."""
    key = tuple(words)
    hit = _numbers_cache.get(key)
    if hit is not None:
        return hit
    out = _numbers(words)
    if len(_numbers_cache) > 64:
        _numbers_cache.clear()
    _numbers_cache[key] = out
    return out


def _numbers(words: Sequence[str]) -> list[Value]:
    out, i = [], 0
    while i < len(words):
        if not (words[i] in _NUMBER_WORDS or words[i][:1].isdigit()):
            i += 1
            continue
        v = parse_number(words, i)
        if v is None:
            i += 1
            continue
        out.append(v)
        i = v.end
    return out


def _match_at(words: Sequence[str], i: int, phrase: tuple[str, ...]) -> bool:
    return tuple(words[i : i + len(phrase)]) == phrase


_index_cache: dict[int, tuple[dict, dict]] = {}


def _indexes(lex: AnswerLexicon) -> tuple[dict, dict]:
    """Quantities and duration anchors indexed by first word (built once per lexicon)."""
    hit = _index_cache.get(id(lex))
    if hit is None:
        q: dict[str, list] = {}
        for phrase, val in lex.quantities:
            q.setdefault(phrase[0], []).append((phrase, val))
        a: dict[str, list] = {}
        for phrase, val in lex.duration_anchors:
            a.setdefault(phrase[0], []).append((phrase, val))
        hit = _index_cache[id(lex)] = (q, a)
    return hit


def _quantity_at(words: Sequence[str], i: int, lex: AnswerLexicon, nums: dict[int, Value]) -> Value | None:
    best: Value | None = nums.get(i)
    for phrase, val in _indexes(lex)[0].get(words[i], ()):
        if _match_at(words, i, phrase) and (best is None or i + len(phrase) > best.end):
            best = Value(val, i, i + len(phrase))
    return best


def durations(tokens: Tokens, lex: AnswerLexicon, *, answer: bool = False) -> list[Value]:
    """Durations in hours. In a statement a number+unit needs a cue ("for 3 days", "2 days ago",
    "the last week"), so "a 3 month old" is not a duration; in an answer any number+unit counts."""
    words = tokens.words
    out: list[Value] = []
    nums = {v.start: v for v in numbers(words)}
    quantities, anchors = _indexes(lex)
    i = 0
    while i < len(words):
        if words[i] not in anchors and words[i] not in quantities and i not in nums:
            i += 1
            continue
        hit: Value | None = None
        for phrase, hours in anchors.get(words[i], ()):
            if _match_at(words, i, phrase) and (hit is None or i + len(phrase) > hit.end):
                hit = Value(hours, i, i + len(phrase))
        q = _quantity_at(words, i, lex, nums)
        if q is not None and q.end < len(words) and words[q.end] in lex.units_hours:
            unit_end = q.end + 1
            after = words[unit_end] if unit_end < len(words) else ""
            before = words[i - 1] if i > 0 else ""
            before2 = words[i - 2] if i > 1 else ""
            cued = (
                answer
                or after in ("ago", "now", "back", "after", "later", "on", "running", "straight")
                or before
                in (
                    "for",
                    "past",
                    "last",
                    "over",
                    "since",
                    "about",
                    "around",
                    "almost",
                    "nearly",
                    "than",
                    "like",
                    "lasted",
                    "lasting",
                    "been",
                    "went",
                    "going",
                )
                or before2 in ("for", "past", "last", "over", "lasted", "been")
                # Indian English "from three days he has pain" (= for three days); not "back from
                # two weeks in Spain"
                or (
                    before == "from"
                    and before2 not in ("back", "home", "returned", "away", "holiday", "came")
                )
            )
            # "two years ago" dates past history, not how long today's symptom has lasted
            history_ago = after == "ago" and lex.units_hours[words[q.end]] >= 700
            if cued and after != "old" and not history_ago:
                val = Value(q.value * lex.units_hours[words[q.end]], i, unit_end)
                if hit is None or val.end > hit.end:
                    hit = val
        if hit is not None:
            out.append(hit)
            i = hit.end
        else:
            i += 1
    return out


_AGE_UNITS_MONTHS = {"day": 1 / 30, "days": 1 / 30, "week": 0.23, "weeks": 0.23, "wk": 0.23, "wks": 0.23,
                     "month": 1.0, "months": 1.0, "mo": 1.0, "year": 12.0, "years": 12.0, "yr": 12.0,
                     "yrs": 12.0, "yo": 12.0}  # fmt: skip
_AGE_LEADS = ("im", "aged", "age", "hes", "shes", "turned", "am")


_NOT_AGE_UNITS = frozenset(
    "minutes minute mins min hours hour hrs seconds secs times tablets tablet pills pill mg kg stone pounds "
    "lbs miles mph feet foot ft metres meters ml units point percent weeks week pregnant".split()
)
_AGE_SUBJECTS = frozenset(
    "he she mum mom dad mother father husband wife partner nan nana gran granny grandad grandma grandpa "
    "grandmother grandfather son daughter brother sister aunt uncle neighbour neighbor friend who patient".split()
)

_CHILD_SUBJECTS = frozenset(
    "son daughter boy girl kid child toddler grandson granddaughter nephew niece".split()
)
_CHILD_POSSESSIVES = frozenset(
    "sons daughters boys girls kids childs toddlers grandsons granddaughters nephews nieces".split()
)
# what may follow an age said bare ("my son is 3 and ...", "my daughter's two, she ...", "mum's 81,
# she ..."); a noun after the number ("my son is 3 days late", "my daughter's two friends") is not an age
_BARE_AGE_FOLLOW = frozenset(
    [
        "",
        "and",
        "now",
        "he",
        "she",
        "hes",
        "shes",
        "but",
        "so",
        "who",
        "just",
        "today",
        "this",
        "has",
        "had",
        "was",
        "is",
        "it",
        "its",
        "theres",
        "they",
        "years",
        "year",
    ]
)


def ages(tokens: Tokens, *, answer: bool = False) -> list[Value]:
    """Ages in months: "6 weeks old", "my 3 month old", "I'm 72", "aged 70"; in an answer also "72"."""
    words = tokens.words
    out: list[Value] = []
    for num in numbers(words):
        j = num.end
        unit = words[j] if j < len(words) else ""
        if unit in _AGE_UNITS_MONTHS:
            nxt = words[j + 1] if j + 1 < len(words) else ""
            prev = words[num.start - 1] if num.start > 0 else ""
            if nxt in ("pregnant", "late", "early", "overdue") or (
                nxt == "and" and "pregnant" in words[j + 2 : j + 4]
            ):
                continue  # "eleven weeks pregnant", "period is two weeks late": not a baby's age
            if (
                nxt == "old"
                or (answer and nxt not in ("ago",))
                or prev
                in (
                    "my",
                    "a",
                    "our",
                    "the",
                    "her",
                    "his",
                    "is",
                    "hes",
                    "shes",
                    "im",
                    "aged",
                    "turned",
                    "only",
                    "just",
                )
                # 2026.12.13: "my little boy's 18 months and ..." (the normaliser drops "'s"); only
                # weeks or months, and only before a clause ("my daughter's 5 days off school" is not an age)
                or (
                    (prev in _CHILD_SUBJECTS or prev in _CHILD_POSSESSIVES or prev in ("baby", "babys"))
                    and unit in ("weeks", "week", "months", "month")
                    and nxt in _BARE_AGE_FOLLOW
                )
            ):
                if prev not in ("for", "past", "last") and nxt not in ("ago",):
                    end = j + 2 if nxt == "old" else j + 1
                    out.append(Value(num.value * _AGE_UNITS_MONTHS[unit], num.start, end))
            continue
        prev = words[num.start - 1] if num.start > 0 else ""
        if not float(num.value).is_integer() or unit in ("degrees", "degree", "c", "f", "out", "percent"):
            continue  # 38.4 is a temperature, "8 out of 10" a score
        # "I'm 81 and ...", "my mum is 78 and ...": an adult age in years without the word "years"
        before = words[num.start - 2] if num.start > 1 else ""
        if (
            not answer
            and 18 <= num.value <= 120
            and unit not in _NOT_AGE_UNITS
            and (
                prev in ("im", "hes", "shes")
                or (prev == "is" and before in _AGE_SUBJECTS)
                # "mum's 81, she ...": the normaliser drops "'s"; only a clause-like word may follow
                or (prev in _AGE_SUBJECTS and unit in _BARE_AGE_FOLLOW)
            )
        ):
            out.append(Value(num.value * 12.0, num.start, num.end))
            continue
        # "my son is 3, ...", "my little boy's three he ...": a child's age in years, said bare
        if (
            not answer
            and 1 <= num.value <= 17
            and unit in _BARE_AGE_FOLLOW
            and (
                (prev == "is" and before in _CHILD_SUBJECTS)
                or prev in _CHILD_POSSESSIVES
                # the normaliser drops "'s": "my daughter's two" arrives as "my daughter two"
                or (
                    prev in _CHILD_SUBJECTS
                    and before in ("my", "little", "our", "youngest", "eldest", "oldest")
                )
            )
        ):
            out.append(Value(num.value * 12.0, num.start, num.end))
            continue
        if (
            (prev in _AGE_LEADS or answer)
            and 0 < num.value <= 120
            and (not unit or unit in ("old", "years", "now"))
        ):
            if answer or num.value >= 2:
                out.append(Value(num.value * 12.0, num.start, num.end))
    return out


def age_band(months: float) -> str:
    if months < 3:
        return "under_3_months"
    if months < 24:
        return "3_months_to_2_years"
    if months < 12 * 12:
        return "2_to_11"
    if months < 18 * 12:
        return "12_to_17"
    if months < 65 * 12:
        return "18_to_64"
    return "65_plus"


# 2026.12.4: a reading is said many ways ("she felt warm so I checked and it's 38.2", "he's hot,
# thirty eight and a half"), so warmth and checking words count as cues, a few words either side.
_TEMP_CUES = frozenset(("temperature", "temperatures", "fever", "feverish", "thermometer", "temp", "temps",
                        "degrees", "degree", "reading", "celsius", "fahrenheit", "warm", "hot", "burning",
                        "boiling", "checked", "check", "checking", "measured", "took", "febrile", "clammy"))  # fmt: skip
# A number followed by one of these is a quantity, not a reading ("38 weeks pregnant", "36 hours").
_NOT_TEMP_UNITS = frozenset(("weeks", "week", "wks", "days", "day", "hours", "hour", "hrs", "minutes", "mins",
                             "years", "year", "yrs", "months", "month", "old", "mg", "milligrams", "ml", "kg",
                             "kilos", "pounds", "lbs", "percent", "times", "tablets", "pills", "units",
                             "th", "st", "nd", "rd", "pregnant", "past", "oclock", "am", "pm"))  # fmt: skip
# An integer after these is an age ("I'm 38 and feel hot"), not a reading.
_AGE_BEFORE = frozenset(("im", "hes", "shes", "aged", "age", "turned", "turning", "born"))


def temperatures(tokens: Tokens) -> list[Value]:
    """Body temperatures in °C from a number in 35.0-42.9 °C or 95-108 °F said near a fever,
    warmth or measuring word: "a temperature of 39.2", "felt warm so I checked, it's 38.2",
    "thirty eight and a half", "101 F", "a hundred and two"."""
    words = tokens.words
    out = []
    for num in numbers(words):
        window = words[max(0, num.start - 8) : num.start] + words[num.end : num.end + 3]
        if not any(w in _TEMP_CUES for w in window):
            continue
        v = num.value
        unit = words[num.end] if num.end < len(words) else ""
        prev = words[num.start - 1] if num.start > 0 else ""
        if unit in _NOT_TEMP_UNITS or (float(v).is_integer() and prev in _AGE_BEFORE):
            continue
        if unit in ("f", "fahrenheit") or 95 <= v <= 108:
            c = (v - 32) * 5 / 9
        elif 35 <= v < 43:
            c = v
        else:
            continue
        if 35 <= c < 43:
            out.append(Value(round(c, 1), num.start, num.end))
    return out


_PULSE_CUES = frozenset(("pulse", "heart", "hearts", "heartbeat", "heartrate", "rate", "bpm", "beats", "beat",
                          "watch", "fitbit", "monitor", "oximeter", "tracker"))  # fmt: skip
_NOT_PULSE_UNITS = frozenset(("weeks", "week", "days", "day", "hours", "hour", "hrs", "minutes", "mins", "years",
                              "year", "months", "month", "degrees", "percent", "mg", "milligrams", "tablets",
                              "pills", "over", "kilos", "kg", "pounds", "stone", "steps", "calories"))  # fmt: skip


def _watch_readings(words: Sequence[str]) -> list[Value]:
    """ "one eighty", "one sixty five": how people read 180 or 165 off a watch or monitor."""
    out, n, i = [], len(words), 0
    while i < n - 1:
        if words[i] in ("one", "two") and words[i + 1] in _TENS:
            v, j = 100 * _UNITS[words[i]] + _TENS[words[i + 1]], i + 2
            if j < n and 1 <= _UNITS.get(words[j], 0) <= 9 and not (j + 1 < n and words[j + 1] in _TENS):
                v, j = v + _UNITS[words[j]], j + 1
            out.append(Value(float(v), i, j))
            i = j
        else:
            i += 1
    return out


def heart_rates(tokens: Tokens) -> list[Value]:
    """Pulse rates in beats per minute (30-250) said near a pulse word: "my heart rate is 172",
    "the watch says a hundred and sixty", "pulse of 45", "it's showing one eighty"."""
    words = tokens.words
    shorthand = _watch_readings(words)
    taken = {t for v in shorthand for t in range(v.start, v.end)}
    candidates = shorthand + [v for v in numbers(words) if not taken.intersection(range(v.start, v.end))]
    out = []
    for num in sorted(candidates, key=lambda v: v.start):
        v, start, end = num.value, num.start, num.end
        window = words[max(0, start - 6) : start] + words[end : end + 2]
        if not any(w in _PULSE_CUES for w in window):
            continue
        unit = words[end] if end < len(words) else ""
        prev = words[start - 1] if start > 0 else ""
        if unit in _NOT_PULSE_UNITS or prev in _AGE_BEFORE or prev == "over" or not 30 <= v <= 250:
            continue
        out.append(Value(float(v), start, end))
    return out


_SCALE_WORDS = {"mild": 3, "moderate": 5, "severe": 9, "terrible": 9, "unbearable": 10, "excruciating": 10,
                "agony": 10, "worst": 10, "bad": 7, "awful": 9, "horrendous": 10}  # fmt: skip


def pain_scores(tokens: Tokens, *, answer: bool = False) -> list[Value]:
    """0-10 scores: "eight out of ten", "a 7"; in an answer a bare number or word ("severe")."""
    words = tokens.words
    out = []
    for num in numbers(words):
        j = num.end
        if num.start >= 2 and words[num.start - 2] == "out" and words[num.start - 1] == "of":
            continue  # the "10" of "8 out of 10"
        if j + 1 < len(words) and words[j] == "out" and words[j + 1] == "of":
            if 0 <= num.value <= 10:
                out.append(Value(num.value, num.start, min(len(words), j + 3)))
        elif answer and 0 <= num.value <= 10:
            out.append(Value(num.value, num.start, num.end))
    if answer and not out:
        for i, w in enumerate(words):
            if w in _SCALE_WORDS:
                out.append(Value(float(_SCALE_WORDS[w]), i, i + 1))
    return out


def yes_no(raw_tokens: Tokens, lex: AnswerLexicon, fillers: frozenset[str]) -> tuple[str, int, int] | None:
    """("yes"|"no"|"unsure", start, end) from the start of an answer, or None.

    ``raw_tokens`` keep fillers so "uh huh" and "mm hmm" are heard; fillers before the answer are
    skipped. Unsure phrases win over yes ("not sure" is not "sure")."""
    words = raw_tokens.words
    i = 0
    while i < len(words):
        best: tuple[str, int] | None = None
        for kind, phrases in (("unsure", lex.unsure), ("no", lex.no), ("yes", lex.yes)):
            for p in phrases:
                if _match_at(words, i, p) and (best is None or len(p) > best[1]):
                    best = (kind, len(p))
        if best is not None:
            return best[0], i, i + best[1]
        if words[i] in fillers or words[i] in ("well", "so", "oh", "ah", "erm", "hmm", "i", "mean"):
            i += 1
            continue
        return None
    return None
