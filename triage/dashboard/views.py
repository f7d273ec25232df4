"""Clinician pages: live dashboard, actions, transcript review, telemetry charts."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import CharField, Count, Q
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .. import handoff
from ..models import ClinicianAction, EscalationAlert, NotificationDelivery, TriageSession, UrgencyLevel
from . import selectors, services, telemetry, timeline
from .forms import AcknowledgeForm, OverrideUrgencyForm, ReviewFilterForm
from .permissions import can_act, clinician_required


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next") or default
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = default
    return redirect(target)


def _action_response(request: HttpRequest, ok: bool, message: str, status: int, payload: dict | None = None):
    if _wants_json(request):
        body = {"ok": ok, "message": message, **(payload or {})}
        return JsonResponse(body, status=200 if ok else status)
    (messages.success if ok else messages.error)(request, message)
    return _back(request, reverse("dashboard"))


def _session_action(request: HttpRequest, session_id, act, done: str):
    """Run a clinician action on one session: its refusal as the error response, else ``done``
    with the session's fresh row."""
    try:
        act()
    except services.ActionRefused as exc:
        return _action_response(request, False, exc.message, exc.status)
    return _action_response(request, True, done, 200, {"session": selectors.fetch_row(session_id)})


# --- live dashboard -------------------------------------------------------------------------


@require_GET
@clinician_required
def dashboard(request: HttpRequest):
    return render(
        request,
        "dashboard/live.html",
        {
            "initial_rows": selectors.active_rows(),
            "urgency_levels": UrgencyLevel.choices,
            "can_act": can_act(request.user),
            "section": "live",
        },
    )


@require_GET
@clinician_required(api=True)
def api_sessions(request: HttpRequest):
    """The same rows the socket's snapshot carries (fallback when the socket is down)."""
    return JsonResponse({"sessions": selectors.active_rows()})


@require_GET
@clinician_required(api=True)
def api_session(request: HttpRequest, session_id):
    row = selectors.fetch_row(session_id)
    if row is None:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"session": row})


@require_POST
@clinician_required(act=True, api=True)
def acknowledge(request: HttpRequest, alert_id: int):
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return _action_response(request, False, "Invalid note.", 400, {"errors": form.errors})
    try:
        alert = services.acknowledge_alert(alert_id, request.user, form.cleaned_data["note"])
    except services.ActionRefused as exc:
        return _action_response(request, False, exc.message, exc.status)
    return _action_response(request, True, "Alert acknowledged.", 200, {"alert": selectors.alert_dict(alert)})


@require_POST
@clinician_required(act=True, api=True)
def take_over(request: HttpRequest, session_id):
    return _session_action(
        request,
        session_id,
        lambda: services.take_over(session_id, request.user),
        "You have taken over the call; the agent is telling the patient you are joining.",
    )


@require_POST
@clinician_required(act=True, api=True)
def hand_back(request: HttpRequest, session_id):
    return _session_action(
        request,
        session_id,
        lambda: handoff.hand_back(session_id, request.user, request.POST.get("note", "")[:1000]),
        "Handed back: the agent continues the interview.",
    )


@require_POST
@clinician_required(act=True, api=True)
def close_call(request: HttpRequest, session_id):
    return _session_action(
        request,
        session_id,
        lambda: handoff.close_call(
            session_id, request.user, request.POST.get("disposition", ""), request.POST.get("note", "")[:2000]
        ),
        "Call closed.",
    )


@require_POST
@clinician_required(act=True, api=True)
def override_urgency(request: HttpRequest, session_id):
    form = OverrideUrgencyForm(request.POST)
    if not form.is_valid():
        return _action_response(
            request, False, "A level and a reason are required.", 400, {"errors": form.errors}
        )
    return _session_action(
        request,
        session_id,
        lambda: services.override_urgency(
            session_id, request.user, form.cleaned_data["level"], form.cleaned_data["reason"]
        ),
        "Urgency overridden.",
    )


# --- transcript review ----------------------------------------------------------------------


@require_GET
@clinician_required
def review_list(request: HttpRequest):
    form = ReviewFilterForm(request.GET or None)
    sessions = TriageSession.objects.annotate(
        alert_count=Count("alerts", distinct=True),
        turn_count=Count(
            "audit_events", filter=Q(audit_events__kind__in=["patient_turn", "agent_turn"]), distinct=True
        ),
    ).order_by("-created_at")
    if form.is_valid():
        data = form.cleaned_data
        if data["status"]:
            sessions = sessions.filter(status=data["status"])
        if data["urgency"]:
            sessions = sessions.filter(urgency_level=data["urgency"])
        if data["escalated"]:
            sessions = sessions.filter(alert_count__gt=0)
        if data["since"]:
            sessions = sessions.filter(created_at__date__gte=data["since"])
        if data["until"]:
            sessions = sessions.filter(created_at__date__lte=data["until"])
        if data["q"]:
            sessions = sessions.annotate(id_text=Cast("id", CharField())).filter(
                id_text__startswith=_id_prefix(data["q"])
            )
    page = Paginator(sessions, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "review/list.html",
        {"form": form, "page": page, "query": query.urlencode(), "section": "review"},
    )


def _id_prefix(q: str) -> str:
    # Session ids are UUIDs: PostgreSQL renders them with hyphens, SQLite stores plain hex.
    keep = "0123456789abcdef-" if connection.vendor == "postgresql" else "0123456789abcdef"
    return "".join(c for c in q.lower() if c in keep)


@require_GET
@clinician_required
def review_detail(request: HttpRequest, session_id):
    session = TriageSession.objects.select_related("taken_over_by").filter(pk=session_id).first()
    if session is None:
        raise Http404("No such session.")
    built = timeline.build(session)
    return render(
        request,
        "review/detail.html",
        {
            "session": session,
            "urgency_label": selectors.urgency_label(session.urgency_level),
            "alerts": EscalationAlert.objects.filter(session=session).select_related("acknowledged_by"),
            "deliveries": NotificationDelivery.objects.filter(alert__session=session).select_related("alert"),
            "actions": ClinicianAction.objects.filter(session=session).select_related("clinician"),
            "store_audio": settings.TRIAGE["STORE_AUDIO"],
            "duration_s": (
                (session.ended_at or session.last_activity_at) - session.created_at
            ).total_seconds(),
            "section": "review",
            **built,
        },
    )


# --- telemetry ------------------------------------------------------------------------------

WINDOWS = {"1": 1, "6": 6, "24": 24, "168": 168}


@require_GET
@clinician_required
def telemetry_page(request: HttpRequest):
    return render(request, "dashboard/telemetry.html", {"windows": WINDOWS, "section": "telemetry"})


@require_GET
@clinician_required(api=True)
def telemetry_data(request: HttpRequest):
    hours = WINDOWS.get(request.GET.get("hours", "24"), 24)
    start, end = telemetry.window(hours)
    telemetry.ensure_fresh(start, end)
    return JsonResponse(
        {
            "window": {"start": start.isoformat(), "end": end.isoformat(), "hours": hours},
            "series": telemetry.series(start, end),
            "stages": telemetry.stage_breakdown(start, end),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )
