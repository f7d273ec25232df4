"""Two clinicians cannot take the same call (issue 13 part 5): the row lock in
dashboard.services.take_over decides, on real PostgreSQL, when both press at the same moment."""

import threading

import pytest
from django.db import connection
from django.test import Client

from tests.triage.clinician_support import make_clinician
from triage import services
from triage.dashboard import services as dashboard_services
from triage.models import AuditEvent, ClinicianAction, TriageSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_simultaneous_take_overs_one_wins_the_other_is_told_who():
    ann, bo = make_clinician("nurse_ann"), make_clinician("dr_bo")
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def press(user):
        try:
            barrier.wait(timeout=10)
            results[user.get_username()] = dashboard_services.take_over(session.pk, user)
        except dashboard_services.ActionRefused as exc:
            results[user.get_username()] = exc
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=press, args=(u,)) for u in (ann, bo)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    refused = [r for r in results.values() if isinstance(r, dashboard_services.ActionRefused)]
    assert len(results) == 2 and len(refused) == 1, results
    stored = TriageSession.objects.get(pk=session.pk)
    winner = stored.taken_over_by.get_username()
    assert refused[0].status == 409 and refused[0].message == f"{winner} has already taken over this call."
    assert ClinicianAction.objects.filter(session=session, kind="take_over").count() == 1
    assert AuditEvent.objects.filter(session=session, kind="clinician_took_over").count() == 1

    # Over HTTP the second clinician gets 409 with the holder's name; the row names the holder.
    loser = bo if winner == "nurse_ann" else ann
    client = Client()
    client.force_login(loser)
    response = client.post(f"/dashboard/sessions/{session.pk}/take-over", HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and winner in response.json()["message"]
    row = client.get(f"/dashboard/api/sessions/{session.pk}").json()["session"]
    assert row["taken_over_by"] == winner and row["status"] == "clinician"
