"""Deterministic clinical rules for the triage voice agent: red flags, urgency, the interview.

No model decides urgency or escalation: versioned YAML rule sets (``rulesets/``) do, with every
assessment explaining which rules fired on which of the patient's words. No Django imports.

    from clinical_rules import assess, PatientContext
    a = assess(["my face is drooping and I can't lift my arm"], context=PatientContext())
    a.level, a.escalate, a.explanation()
"""

from .api import assess
from .interview import TriageInterview
from .loader import RuleSetError, load_ruleset
from .ruleset import RuleSet
from .types import Assessment, Finding, PatientContext, Prompt, UrgencyLevel
from .vocabulary import vocabulary

__all__ = [
    "Assessment",
    "Finding",
    "PatientContext",
    "Prompt",
    "RuleSet",
    "RuleSetError",
    "TriageInterview",
    "UrgencyLevel",
    "assess",
    "fixed_phrases",
    "load_ruleset",
    "vocabulary",
]


def fixed_phrases() -> list[str]:
    """Every fixed text of the default rule set (greeting, scripts, questions): the voice runtime
    pre-synthesizes these so they start at once."""
    return load_ruleset().fixed_phrases()
