"""Create (or reset) the demo clinician login that `make run` prints. Development only."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

CLINICIAN_GROUP = "clinicians"


def ensure_clinician_group() -> Group:
    group, _ = Group.objects.get_or_create(name=CLINICIAN_GROUP)
    perms = Permission.objects.filter(
        content_type__app_label="triage",
        codename__in=[
            "view_clinical_dashboard",
            "view_triagesession",
            "view_turn",
            "view_escalationalert",
            "change_escalationalert",
            "view_auditevent",
            "view_latencysample",
            "view_statetransition",
            "view_clinicianaction",
            "add_clinicianaction",
        ],
    )
    group.permissions.add(*perms)
    return group


class Command(BaseCommand):
    help = "Create the demo clinician (staff, clinicians group) and print its login. Refused in production."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="clinician")
        parser.add_argument("--password", default=os.environ.get("DEMO_CLINICIAN_PASSWORD", ""))

    def handle(self, *args, username, password, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("Demo logins are not created in production; use createsuperuser.")
        password = password or secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True  # the demo login also opens the admin for operators
        user.set_password(password)
        user.save()
        user.groups.add(ensure_clinician_group())
        self.stdout.write(
            self.style.SUCCESS(f"Demo clinician login: username={username} password={password}")
        )
