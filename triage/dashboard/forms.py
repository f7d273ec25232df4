"""Forms for clinician actions and the review list filters."""

from __future__ import annotations

from django import forms

from ..models import TriageSession, UrgencyLevel


class AcknowledgeForm(forms.Form):
    note = forms.CharField(required=False, max_length=1000, strip=True)


class TakeOverForm(forms.Form):
    """No fields: the POST itself (with its CSRF token) is the request."""


class OverrideUrgencyForm(forms.Form):
    level = forms.TypedChoiceField(choices=UrgencyLevel.choices, coerce=int)
    reason = forms.CharField(
        min_length=3,
        max_length=1000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the urgency differs from the rules' assessment (kept in the audit trail).",
    )


class ReviewFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *TriageSession.Status.choices], required=False)
    urgency = forms.TypedChoiceField(
        choices=[("", "Any urgency"), *UrgencyLevel.choices], coerce=int, required=False, empty_value=None
    )
    escalated = forms.BooleanField(required=False, label="With alerts only")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=36, label="Session id starts with")
