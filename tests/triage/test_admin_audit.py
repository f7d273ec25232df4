"""The admin cannot change clinical data outside the audit trail, the clinicians group holds
only what the dashboard checks, and the demo clinician is not a superuser."""

import importlib
import os
import subprocess
import sys

import pytest
from django.apps import apps as global_apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client, RequestFactory

from tests.triage.clinician_support import make_admin, make_clinician
from tests.triage.test_settings import ROOT
from triage import services
from triage.dashboard.permissions import can_act, can_view
from triage.management.commands.ensure_demo_clinician import CLINICIAN_GROUP, CLINICIAN_PERMISSIONS
from triage.models import AuditEvent, ClinicianAction, EscalationAlert, TriageSession
from voice import events as ev

pytestmark = pytest.mark.django_db


@pytest.fixture
def escalated():
    session, _ = services.create_session(subject="self", age_band="18_to_64", pregnant=None, consent=True)
    alert = services.record_escalation(
        session.pk,
        ev.EscalationRaised(1, 1, "call_emergency_services", ("x",), ({"rule_id": "x"},), "Call.", True, 1.0),
    )
    return session, alert


def test_superuser_cannot_edit_alerts_or_sessions_in_the_admin(escalated):
    session, alert = escalated
    client = Client()
    client.force_login(make_admin())
    events_before = AuditEvent.objects.filter(session=session).count()

    # The pages still show the rows (read-only, no save button) ...
    alert_url = f"/admin/triage/escalationalert/{alert.pk}/change/"
    session_url = f"/admin/triage/triagesession/{session.pk}/change/"
    for url in (alert_url, session_url):
        page = client.get(url)
        assert page.status_code == 200
        assert b'name="_save"' not in page.content

    # ... and the edits the probe made are refused.
    assert client.post(alert_url, {"status": "resolved"}).status_code == 403
    assert (
        client.post(
            session_url,
            {"urgency_level": 5, "disposition": "self_care", "status": "ended", "state": "ended"},
        ).status_code
        == 403
    )
    assert (
        client.post(f"/admin/triage/escalationalert/{alert.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert (
        client.post(f"/admin/triage/triagesession/{session.pk}/delete/", {"post": "yes"}).status_code == 403
    )

    alert.refresh_from_db()
    session.refresh_from_db()
    assert alert.status == EscalationAlert.Status.OPEN
    assert (session.urgency_level, session.status) == (1, TriageSession.Status.ESCALATED)
    assert AuditEvent.objects.filter(session=session).count() == events_before

    # The audited path still works for the same superuser.
    response = client.post(
        f"/dashboard/sessions/{session.pk}/urgency",
        {"level": 3, "reason": "Seen on video, stable."},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200
    last = AuditEvent.objects.filter(session=session).order_by("-seq").first()
    assert last.kind == "urgency_overridden" and last.actor == "clinician:admin"
    assert ClinicianAction.objects.filter(session=session, kind="override_urgency").count() == 1


def test_no_triage_table_is_editable_in_the_admin():
    """Every registered triage model: no add, change or delete, even for a superuser."""
    request = RequestFactory().get("/admin/")
    request.user = make_admin()
    triage_admins = [ma for model, ma in admin.site._registry.items() if model._meta.app_label == "triage"]
    assert len(triage_admins) >= 11
    for model_admin in triage_admins:
        name = type(model_admin).__name__
        assert not model_admin.has_add_permission(request), name
        assert not model_admin.has_change_permission(request), name
        assert not model_admin.has_delete_permission(request), name
        assert model_admin.has_view_permission(request), name
        for inline in model_admin.get_inline_instances(request):
            assert not inline.has_add_permission(request, None), (name, type(inline).__name__)
            assert not inline.has_change_permission(request), (name, type(inline).__name__)
            assert not inline.has_delete_permission(request), (name, type(inline).__name__)


def group_codenames() -> set[str]:
    return set(Group.objects.get(name=CLINICIAN_GROUP).permissions.values_list("codename", flat=True))


def test_the_migration_gives_the_clinicians_group_exactly_its_permissions():
    """Run against the live app registry, on a group that (as the old demo command left it)
    also held change_escalationalert and admin view permissions."""
    migration = importlib.import_module("triage.migrations.0005_clinicians_group")
    assert set(migration.PERMISSIONS) == set(CLINICIAN_PERMISSIONS)
    nurse = make_clinician()
    Group.objects.get(name=CLINICIAN_GROUP).permissions.add(
        *Permission.objects.filter(codename__in=["change_escalationalert", "view_triagesession"])
    )
    assert get_user_model().objects.get(pk=nurse.pk).has_perm("triage.change_escalationalert")

    migration.create_clinicians_group(global_apps, None)

    assert group_codenames() == {"view_clinical_dashboard", "add_clinicianaction"}
    nurse = get_user_model().objects.get(pk=nurse.pk)  # fresh permission cache
    assert can_view(nurse) and can_act(nurse)
    assert not nurse.has_perm("triage.change_escalationalert")
    assert global_apps.get_app_config("triage").models_module is not None  # registry left intact


def test_migrate_creates_the_clinicians_group_on_a_fresh_database(tmp_path):
    """A production database gets the group from `migrate` alone (no demo command)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ENV"}}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.contrib.auth.models import Group; "
            "print(sorted(Group.objects.get(name='clinicians').permissions.values_list('codename', flat=True)))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "['add_clinicianaction', 'view_clinical_dashboard']"


def test_demo_clinician_is_staff_but_not_a_superuser(escalated):
    _, alert = escalated
    call_command("ensure_demo_clinician", username="demo", password="demo-pass-123456")
    user = get_user_model().objects.get(username="demo")
    assert user.is_staff and not user.is_superuser
    assert user.groups.filter(name=CLINICIAN_GROUP).exists() and can_view(user) and can_act(user)
    assert not user.has_perm("triage.change_escalationalert")

    client = Client()
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 200
    assert client.get(f"/admin/triage/escalationalert/{alert.pk}/change/").status_code == 200  # view only
    assert (
        client.post(f"/admin/triage/escalationalert/{alert.pk}/change/", {"status": "resolved"}).status_code
        == 403
    )
    assert client.get("/admin/auth/user/").status_code == 403  # not an operator
    alert.refresh_from_db()
    assert alert.status == EscalationAlert.Status.OPEN
