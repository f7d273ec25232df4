"""The triage interview: one per call, driven by the voice pipeline (or a test) turn by turn.

Policy (see docs/clinical-rules.md, "Partial transcripts and retraction"):

* ``observe_partial(text)`` re-assesses with ``text`` as the still-changing utterance. It REPLACES
  the previous partial, so words that ASR revises away take their findings with them.
* A red flag seen only in partials is reported at once (``escalate`` is True on that assessment,
  so clinicians can be alerted early). If a later partial revises those words away before the
  utterance is final, and the emergency script has not been spoken, the flag is withdrawn - and
  listed in ``Assessment.withdrawn`` so the withdrawal is visible, never silent.
* An escalation becomes permanent for the call ("latched") as soon as it is in a final utterance
  or its emergency script has been returned by ``next_prompt``.
* Urgency never goes down within a call except through the answers the rules define
  (``cleared_when_negated`` after screening questions, or a pending rule resolved by the answer
  it asked for). Findings that would otherwise drop out are kept and say so.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import replace

from .answers import parse_answer
from .engine import (
    Analysis,
    analyse,
    build_assessment,
    clarify_prompt,
    disposition_prompt,
    emergency_prompt,
    next_protocol_question,
    question_prompt,
    synthetic_analysis,
)
from .loader import load_ruleset
from .ruleset import RuleSet
from .types import POSITIVE_ASSERTIONS, Assessment, Finding, PatientContext, Prompt

log = logging.getLogger(__name__)

SCREEN = "universal_screen"  # protocols.yaml: asked when words are understood but place no complaint
SCREEN_NEGATIVE = "SYS-SCREEN-NEGATIVE"


class TriageInterview:
    """Stateful per-call policy; satisfies ``voice.interfaces.DialoguePolicy`` structurally."""

    def __init__(self, context: PatientContext | None = None, ruleset: RuleSet | None = None):
        self.context = context or PatientContext()
        self.ruleset = ruleset or load_ruleset()
        self._lock = threading.RLock()
        self._finals: list[Analysis] = []  # committed utterances and parsed answers
        self._utterances = 0
        self._partial: Analysis | None = None
        self._pending: str | None = None  # question awaiting its answer
        self._retries: dict[str, int] = {}
        self._off_topic: set[str] = (
            set()
        )  # questions re-asked once because the answer was about something else
        self._asked: list[str] = []
        self._answered: list[str] = []
        self._clarifies = 0
        self._latched: dict[str, Finding] = {}
        self._partial_flags: dict[str, Finding] = {}
        self._kept: dict[str, Finding] = {}  # committed findings kept so urgency cannot silently drop
        self._cleared_seen: set[str] = set()
        self._committed_reasons: list[Finding] = []
        self._finished = False
        self._final_prompt: Prompt | None = None
        self._unrecognised: Finding | None = None
        self._screen_negative: Finding | None = None
        self._rephrased = False
        self._queued: list[str] = []  # questions the semantic safety net asked for (asked next)
        self._learned: dict[str, Finding] = {}  # raise-only findings of the learned scorer (kept)
        self._assessment, _ = build_assessment(self.ruleset, self.context, [], next_question=False)

    # ------------------------------------------------------------------ properties
    @property
    def assessment(self) -> Assessment:
        return self._assessment

    @property
    def escalated(self) -> bool:
        return bool(self._latched) or self._assessment.escalate

    @property
    def finished(self) -> bool:
        return self._finished

    # ------------------------------------------------------------------ the DialoguePolicy calls
    def opening(self) -> Prompt:
        return Prompt(kind="greeting", text=self.ruleset.texts["greeting"], fixed=True)

    def observe_partial(self, text: str) -> Assessment:
        with self._lock:
            self._partial = analyse(self.ruleset, text if isinstance(text, str) else "").with_utterance(
                self._utterances
            )
            return self._reassess(on_partial=True)

    def observe_final(self, text: str) -> Assessment:
        with self._lock:
            text = text if isinstance(text, str) else ""
            analysis = analyse(self.ruleset, text).with_utterance(self._utterances)
            self._utterances += 1
            self._partial = None
            answered_now = False
            if self._pending is not None and not self._finished:
                answered_now = self._take_answer(self._pending, text, analysis)
            self._finals.append(analysis)
            a = self._reassess(on_partial=False, answered_now=answered_now)
            for f in a.reasons:
                if f.escalate and f.rule_id not in self._latched:
                    self._latched[f.rule_id] = f
            self._partial_flags.clear()
            return a

    def next_prompt(self) -> Prompt:
        with self._lock:
            return self._next_prompt()

    def raise_with(self, finding: Finding) -> bool:
        """Add a raise-only finding from outside the rules (the learned emergency scorer): it is
        kept for the rest of the call, so the level can only go up. False (nothing changes) when
        the call is decided, already escalated, or already at the finding's level or above."""
        with self._lock:
            a = self._assessment
            if (
                self._finished
                or self.escalated
                or finding.rule_id in self._learned
                or finding.level is None
                or (a.level is not None and int(a.level) <= finding.level)
            ):
                return False
            self._learned[finding.rule_id] = finding
            self._reassess(on_partial=False)
            return True

    def fork(self) -> TriageInterview:
        """A throw-away copy for the pipeline's speculation: what changes per utterance (the
        lists, dicts and sets of analyses, findings and questions) copied one level deep, the
        rule set and the context shared, a lock of its own."""
        with self._lock:
            clone = copy.copy(self)
            for name, value in vars(self).items():
                if isinstance(value, list | dict | set):
                    setattr(clone, name, copy.copy(value))
        clone._lock = threading.RLock()
        return clone

    def restore(self, snapshot: TriageInterview) -> None:
        """Put this interview back, in place, to a :meth:`fork` taken earlier (the pipeline
        joins a turn to the one before it and judges the words once, whole)."""
        with self._lock:
            for name, value in vars(snapshot).items():
                if name != "_lock":
                    setattr(self, name, copy.copy(value) if isinstance(value, list | dict | set) else value)

    def queue_question(self, question_id: str) -> bool:
        """Ask ``question_id`` (a protocol question) at the next question slot: the semantic
        safety net's discriminating question. Its answer goes through the rules like any other;
        queuing changes no level. False when unknown, already asked, or the call is decided."""
        with self._lock:
            if (
                question_id not in self.ruleset.questions
                or self._finished
                or self.escalated
                or question_id in self._asked
                or question_id in self._answered
                or question_id == self._pending
                or question_id in self._queued
            ):
                return False
            self._queued.append(question_id)
            return True

    def _queued_question(self) -> str | None:
        for qid in self._queued:
            if qid not in self._asked and qid not in self._answered:
                return qid
        return None

    # ------------------------------------------------------------------ internals
    def _take_answer(self, qid: str, text: str, analysis: Analysis) -> bool:
        rs = self.ruleset
        q = rs.questions[qid]
        tries = self._retries.get(qid, 0)
        res = parse_answer(rs, q, text, analysis, final_try=tries >= 1)
        if res.status == "ok":
            self._finals.append(
                synthetic_analysis(rs, text, res.mentions, res.facts).with_utterance(self._utterances - 1)
            )
            self._answered.append(qid)
            self._pending = None
            return True
        if (
            res.status == "unparsed"
            and qid not in self._off_topic
            and any(m.assertion in POSITIVE_ASSERTIONS for m in analysis.mentions)
        ):
            # the caller told us something else ("I also feel sick") instead of answering: that is
            # information (kept as their statement), not a failed answer; the question is asked
            # again plainly, once, without using up its retry
            self._off_topic.add(qid)
            return False
        self._retries[qid] = tries + 1
        if tries >= 1:
            # asked twice without a usable answer: a yes/no screen counts as "not sure" (triage
            # up); a number we could not get stays unknown
            if q.type == "yes_no":
                res = parse_answer(rs, q, "not sure", analysis, final_try=True)
                self._finals.append(
                    synthetic_analysis(rs, text, res.mentions, res.facts).with_utterance(self._utterances - 1)
                )
            self._answered.append(qid)
            self._pending = None
            return True
        return False

    def _analyses(self, include_partial: bool) -> list[Analysis]:
        out = list(self._finals)
        if include_partial and self._partial is not None:
            out.append(self._partial)
        return out

    def _reassess(self, *, on_partial: bool, answered_now: bool = False) -> Assessment:
        rs = self.ruleset
        extra = [*self._latched.values(), *self._kept.values(), *self._learned.values()]
        if self._unrecognised is not None:
            extra.append(self._unrecognised)
        a, ev = build_assessment(
            rs,
            self.context,
            self._analyses(include_partial=on_partial),
            answered=self._answered,
            asked=self._asked,
            on_partial=on_partial,
            extra_findings=extra,
            next_question=False,
        )
        if self._screen_negative is not None and not ev.findings:
            # the screen's level 4 stands only while no rule has placed the problem
            extra.append(self._screen_negative)
            a, ev = build_assessment(
                rs, self.context, self._analyses(include_partial=on_partial), answered=self._answered,
                asked=self._asked, on_partial=on_partial, extra_findings=extra, next_question=False,
            )  # fmt: skip
        withdrawn: list[Finding] = []
        current = {f.rule_id for f in a.reasons}
        if on_partial:
            for rid, f in list(self._partial_flags.items()):
                if rid not in current and rid not in self._latched:
                    withdrawn.append(f)
                    del self._partial_flags[rid]
                    log.debug("partial-only red flag %s withdrawn by a revised partial", rid)
            for f in a.reasons:
                if f.escalate and f.rule_id not in self._latched:
                    self._partial_flags[f.rule_id] = f
        else:
            # committed urgency only goes down through the answers the rules define
            cleared_now = set(ev.cleared) - self._cleared_seen
            self._cleared_seen |= set(ev.cleared)
            if not (cleared_now or answered_now):
                prev_committed = [
                    f
                    for f in self._committed_reasons
                    if f.rule_id not in current and f.rule_id != SCREEN_NEGATIVE
                ]
                for f in prev_committed:
                    if a.level is None or (f.level is not None and f.level < a.level):
                        self._kept[f.rule_id] = f
                if any(f.rule_id not in current for f in self._kept.values()):
                    a, ev = build_assessment(
                        rs, self.context, self._analyses(False), answered=self._answered, asked=self._asked,
                        extra_findings=[*extra, *self._kept.values()], next_question=False,
                    )  # fmt: skip
            self._committed_reasons = list(a.reasons)
        nq = self._plan(a, ev)
        a = _with(a, next_question=nq, withdrawn=tuple(withdrawn))
        self._assessment = a
        return a

    def _plan(self, a: Assessment, ev) -> Prompt | None:
        """What ``next_prompt`` would say now, without changing state."""
        rs = self.ruleset
        if self._final_prompt is not None:
            return self._final_prompt
        if a.escalate:
            return emergency_prompt(rs, a.reasons)
        if self._pending is not None:
            return self._pending_prompt(a.complaint)
        if not self._finals and self._partial is None:
            return self.opening()
        if a.level is None and a.complaint is None:
            qid = self._screen_question(ev)
            if qid is not None:
                return question_prompt(rs, qid, None)
            if self._screen_done(ev) and not self._rephrased:
                return Prompt(kind="clarify", text=rs.texts["rephrase"], fixed=True)
            if self._clarifies < rs.max_clarify:
                return clarify_prompt(rs)
            return Prompt(
                kind="disposition",
                text=rs.texts["not_understood"],
                fixed=True,
                rule_ids=("SYS-UNRECOGNISED",),
            )
        qid = self._next_question_id(a, ev)
        if qid is not None:
            return question_prompt(rs, qid, a.complaint, tuple(f.rule_id for f in a.reasons))
        if a.level is None:
            return clarify_prompt(rs)
        return disposition_prompt(rs, int(a.level), a.reasons, a.complaint)

    def _next_question_id(self, a: Assessment, ev) -> str | None:
        rs = self.ruleset
        for qid in ev.pending_questions:
            if qid not in self._asked and qid not in self._answered:
                return qid
        queued = self._queued_question()  # the safety net's question, ahead of the protocol's
        if queued is not None:
            return queued
        complaint = a.complaint if a.complaint in rs.complaints else rs.fallback_complaint
        return next_protocol_question(rs, complaint, ev.state, self._asked, rs.max_questions)

    def _pending_prompt(self, complaint: str | None) -> Prompt:
        rs = self.ruleset
        q = rs.questions[self._pending]  # type: ignore[index]
        if self._retries.get(q.id, 0) == 0 and q.id not in self._off_topic:
            return question_prompt(rs, q.id, complaint)
        text = rs.clarify_answer[q.type].format(question=q.text)
        return Prompt(kind="clarify", text=text, fixed=False, question_id=q.id, complaint=complaint)

    def _next_prompt(self) -> Prompt:
        rs = self.ruleset
        a = self._assessment
        if self._final_prompt is not None:
            if self._final_prompt.kind == "emergency":
                return self._final_prompt  # an emergency script is never replaced by small talk
            return Prompt(kind="closing", text=rs.texts["closing"], fixed=True)
        if a.escalate:
            prompt = emergency_prompt(rs, a.reasons)
            for f in a.reasons:
                if f.escalate:
                    self._latched.setdefault(f.rule_id, f)  # spoken: never withdrawn now
            self._finish(prompt)
            return prompt
        if self._pending is not None:
            return self._pending_prompt(a.complaint)
        if not self._finals:
            return self.opening()
        if a.level is None and a.complaint is None:
            _, ev = build_assessment(rs, self.context, self._analyses(False), answered=self._answered,
                                     asked=self._asked, next_question=False)  # fmt: skip
            qid = self._screen_question(ev)
            if qid is not None:
                # understood, but no complaint placed: the first-order screen before "rephrase"
                self._pending = qid
                self._asked.append(qid)
                prompt = question_prompt(rs, qid, None)
                self._assessment = _with(self._assessment, next_question=prompt)
                return prompt
            if self._screen_done(ev):
                return self._after_negative_screen()
            if self._clarifies < rs.max_clarify:
                self._clarifies += 1
                return clarify_prompt(rs)
            self._unrecognised = Finding(
                rule_id="SYS-UNRECOGNISED",
                rule_version=rs.version,
                label="Problem not recognised after repeated attempts",
                evidence_text="",
                start=-1,
                end=-1,
                assertion="present",
                explanation=(
                    f"Nothing recognisable was said after {rs.max_clarify} requests to describe the problem "
                    "(unclear, garbled or another language). When unsure, triage up: urgent care within hours."
                ),
                provenance=(),
                level=3,
            )
            self._reassess(on_partial=False)
            prompt = Prompt(
                kind="disposition",
                text=rs.texts["not_understood"],
                fixed=True,
                rule_ids=("SYS-UNRECOGNISED",),
            )
            self._finish(prompt)
            return prompt
        _, ev = build_assessment(rs, self.context, self._analyses(False), answered=self._answered,
                                 asked=self._asked, next_question=False)  # fmt: skip
        qid = self._next_question_id(a, ev)
        if qid is not None:
            self._pending = qid
            self._asked.append(qid)
            prompt = question_prompt(rs, qid, a.complaint, tuple(f.rule_id for f in a.reasons))
            self._assessment = _with(self._assessment, next_question=prompt)
            return prompt
        if a.level is None:
            self._clarifies += 1
            return clarify_prompt(rs)
        prompt = disposition_prompt(rs, int(a.level), a.reasons, a.complaint)
        self._finish(prompt)
        return prompt

    def _screen_question(self, ev) -> str | None:
        """The next universal-screen question, while the caller's words were understood (English,
        not garbled) but place no complaint. Garbled input is asked to repeat instead."""
        rs = self.ruleset
        queued = self._queued_question()
        if queued is not None and self._finals:
            return queued
        if SCREEN not in rs.complaints or not any(an.understood for an in self._finals):
            return None
        return next_protocol_question(rs, SCREEN, ev.state, self._asked)

    def _screen_done(self, ev) -> bool:
        rs = self.ruleset
        return (
            SCREEN in rs.complaints
            and any(an.understood for an in self._finals)
            and next_protocol_question(rs, SCREEN, ev.state, self._asked) is None
        )

    def _after_negative_screen(self) -> Prompt:
        """Every screen question denied and still no complaint: a level (never none) and one
        request to say it in other words."""
        rs = self.ruleset
        if self._screen_negative is None:
            qs = rs.complaints[SCREEN].questions
            self._screen_negative = Finding(
                rule_id=SCREEN_NEGATIVE,
                rule_version=rs.version,
                label="No complaint recognised; first-order screen negative",
                evidence_text="",
                start=-1,
                end=-1,
                assertion="present",
                explanation=(
                    "No complaint could be placed from the caller's words, and the first-order screen was "
                    f"denied ({len(qs)} questions: severe breathing difficulty, chest pain or pressure, new "
                    "confusion or reduced consciousness, heavy bleeding, severe pain). Nothing points to an "
                    "emergency, but a problem that could not be placed should be reviewed by the caller's "
                    "own doctor within days."
                ),
                provenance=rs.provenance_titles(("ctas", "nhs_111_services")),
                level=4,
            )
            self._reassess(on_partial=False)
        if not self._rephrased:
            self._rephrased = True
            return Prompt(kind="clarify", text=rs.texts["rephrase"], fixed=True)
        a = self._assessment
        prompt = disposition_prompt(rs, int(a.level or 4), a.reasons, a.complaint)
        self._finish(prompt)
        return prompt

    def _finish(self, prompt: Prompt) -> None:
        self._finished = True
        self._final_prompt = prompt
        self._assessment = _with(self._assessment, next_question=prompt)


def _with(a: Assessment, **changes) -> Assessment:
    return replace(a, **changes)
