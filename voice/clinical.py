"""The one door from voice/ to clinical_rules/ for the rules' data and models.

The conversation itself reaches the rules only through the ``DialoguePolicy`` the host hands
the session (voice/interfaces.py). What else the pipeline takes from the clinical side is listed
here, and tests/test_boundaries.py holds every other voice module to it: the fixed phrases it
caches and the ASR's clinical vocabulary, the affect rules (tags raise attention, never a
level), and the semantic safety net with the learned emergency scorer (both raise-only).
"""

from __future__ import annotations

from clinical_rules import fixed_phrases, load_ruleset, vocabulary
from clinical_rules.affect import AffectRules, TagRule, default_affect_rules, normalise
from clinical_rules.emergency_scorer import EmergencyScorer, LearnedRaise, may_raise
from clinical_rules.safety_net import SafetyNet, SafetyNetHit, SafetyNetMonitor, rules_already_urgent

__all__ = [
    "AffectRules",
    "EmergencyScorer",
    "LearnedRaise",
    "SafetyNet",
    "SafetyNetHit",
    "SafetyNetMonitor",
    "TagRule",
    "default_affect_rules",
    "fixed_phrases",
    "load_ruleset",
    "may_raise",
    "normalise",
    "rules_already_urgent",
    "vocabulary",
]
