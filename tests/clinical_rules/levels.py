"""Shared by the round-by-round class tests: the level the rules give one statement."""

from clinical_rules import PatientContext, assess

CHILD = {"subject": "child"}
OTHER = {"subject": "other"}


def level_of(rs, text, ctx):
    """(level or None, the assessment) for ``text`` said with session context ``ctx``."""
    a = assess([text], context=PatientContext(**ctx), ruleset=rs)
    return (int(a.level) if a.level is not None else None), a


def rule_ids(a):
    """The ids of the rules that fired in an assessment (for the guards' "not this rule")."""
    return {f.rule_id for f in a.reasons}
