"""Create (or reset) the demo clinician login that `make run` prints. Development only."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

CLINICIAN_GROUP = "clinicians"
# What the dashboard checks (triage/dashboard/permissions.py) and nothing more. Migration
# 0005_clinicians_group creates the group with exactly these; model change permissions are
# not needed (clinical changes go through the dashboard's audited actions).
CLINICIAN_PERMISSIONS = ("view_clinical_dashboard", "add_clinicianaction")


def ensure_clinician_group() -> Group:
    """The clinicians group with exactly its permissions (the migration creates it; tests that
    flush the database, and older databases, get it here)."""
    group, _ = Group.objects.get_or_create(name=CLINICIAN_GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="triage", codename__in=CLINICIAN_PERMISSIONS)
    )
    return group


class Command(BaseCommand):
    help = (
        "Create the demo clinician (clinicians group; staff with read-only admin views, not a "
        "superuser) and print its login. Refused in production."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="clinician")
        parser.add_argument("--password", default=os.environ.get("DEMO_CLINICIAN_PASSWORD", ""))

    def handle(self, *args, username, password, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("Demo logins are not created in production; use createsuperuser.")
        password = password or secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True  # opens the admin, where it may only view the triage tables
        user.is_superuser = False  # a demo password must not hold every permission
        user.set_password(password)
        user.save()
        user.groups.add(ensure_clinician_group())
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="triage", codename__startswith="view_")
        )
        self.stdout.write(
            self.style.SUCCESS(f"Demo clinician login: username={username} password={password}")
        )
