"""Resume a call on another node after its owner died (triage/ownership.py, deploy/README.md).

The audit chain holds every patient turn in order (``patient_turn`` payloads carry the text).
The rules are deterministic, so replaying those texts into a fresh ``TriageInterview`` (each
final, then the next prompt, as the pipeline does) rebuilds its facts, latched red flags,
urgency and the question that was pending; nothing generative is involved. The caller's affect
baseline (voice/affect.py: the feature numbers of their first measured turns, stored as
``affect_baseline``) is handed to the new pipeline's tracker, so a caller who became breathless
or slurred is still compared with how they spoke before the move. The new pipeline
opens with a short fixed "sorry, we were cut off" and that question. Its turn and reply ids
restart at 0, so what it stores is numbered ``generation * ID_STRIDE`` up (the turns'
idempotency keys would otherwise collide with the stored ones and new turns be dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

from clinical_rules import Prompt

from .models import AuditEvent

CUT_OFF = "Sorry, we were cut off."
ID_STRIDE = 100_000  # far above any call's turn count


@dataclass(frozen=True, slots=True)
class ResumePoint:
    generation: int  # moves of this call so far (the current one included)
    patient_texts: tuple[str, ...]  # what the patient said, in order
    # The caller's affect baseline turns (``affect_baseline`` payloads: feature numbers, no words)
    affect_baseline: tuple[dict, ...] = ()


def load_resume_point(session_id: str) -> ResumePoint:
    """Blocking (database)."""
    events = AuditEvent.objects.filter(session_id=session_id)
    texts = events.filter(kind="patient_turn").order_by("seq").values_list("payload__text", flat=True)
    moves = events.filter(kind="call_moved", payload__resumed=True).count()
    baseline = events.filter(kind="affect_baseline").order_by("seq").values_list("payload", flat=True)
    return ResumePoint(
        generation=max(1, moves),
        patient_texts=tuple(t for t in texts if t and t.strip()),
        affect_baseline=tuple(baseline),
    )


def replay(interview, point: ResumePoint) -> Prompt:
    """Blocking (the rules' NLP): feed the stored turns to ``interview``; returns the opening
    the resumed call speaks."""
    prompt = None
    for text in point.patient_texts:
        interview.observe_final(text)
        prompt = interview.next_prompt()
    base = prompt or interview.opening()  # nothing said yet: the greeting again
    return Prompt(kind="greeting", text=f"{CUT_OFF} {base.text}", fixed=True, rule_ids=base.rule_ids)
