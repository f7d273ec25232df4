"""HTTP views: the patient intake page and the session-creation API."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from . import callback, readiness, services
from .models import TriageSession
from .node import NODE_ID
from .protocol import PROTOCOL_VERSION

AGE_BANDS = {"", "under_3_months", "3_months_to_2_years", "2_to_11", "12_to_17", "18_to_64", "65_plus"}


@require_GET
def intake(request: HttpRequest):
    return render(request, "triage/intake.html", {"protocol_version": PROTOCOL_VERSION})


@require_POST
def create_session(request: HttpRequest):
    """Start a triage session after consent. Returns the patient token once; only its hash is stored."""
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"error": "bad_json", "message": "Body must be JSON."}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "bad_json", "message": "Body must be a JSON object."}, status=400)
    if body.get("consent") is not True:
        return JsonResponse(
            {"error": "consent_required", "message": "Consent is required before a call starts."}, status=400
        )
    subject = body.get("subject", "self")
    if subject not in TriageSession.Subject.values:
        return JsonResponse(
            {"error": "bad_field", "message": "subject must be self, child or other."}, status=400
        )
    age_band = body.get("age_band") or ""
    if age_band not in AGE_BANDS:
        return JsonResponse({"error": "bad_field", "message": "Unknown age_band."}, status=400)
    pregnant = body.get("pregnant")
    if pregnant not in (None, True, False):
        return JsonResponse(
            {"error": "bad_field", "message": "pregnant must be true, false or null."}, status=400
        )
    try:
        callback_number = callback.normalise(body.get("callback_number"))
    except callback.InvalidCallbackNumber as exc:
        return JsonResponse(
            {"error": "bad_field", "field": "callback_number", "message": str(exc)}, status=400
        )
    session, token = services.create_session(
        subject=subject,
        age_band=age_band,
        pregnant=pregnant,
        consent=True,
        callback_number=callback_number,
    )
    return JsonResponse(
        {
            "session_id": str(session.pk),
            "token": token,
            "websocket": f"/ws/patient/{token}/",
            "protocol": PROTOCOL_VERSION,
            "expires_at": session.token_expires_at.isoformat(),
        },
        status=201,
    )


@require_GET
def ready(request: HttpRequest):
    """Readiness for the load balancer (triage/readiness.py): 200 or 503 with the reason."""
    result = readiness.check()
    response = JsonResponse(result.as_json(), status=200 if result.ready else 503)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def health(request: HttpRequest):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse(
        {
            "status": "ok",
            "database": connection.vendor,
            "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
            "node": NODE_ID,  # which web node answered (load-balancer checks, deploy/README.md)
        }
    )
