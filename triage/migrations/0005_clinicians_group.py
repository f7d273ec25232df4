"""The clinicians group and its minimal permissions, so a production database has it (before,
only the development command ensure_demo_clinician created it).

Exactly two permissions: ``view_clinical_dashboard`` (pages, socket) and
``add_clinicianaction`` (acknowledge, take over, override). An existing group loses any other
permission it held (``change_escalationalert`` let a member edit alerts in the admin, outside
the audit trail). The list is frozen here, as a migration's data must be.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "clinicians"
PERMISSIONS = ("view_clinical_dashboard", "add_clinicianaction")


def create_clinicians_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); a fresh database
    # has none yet, so create them now.
    # (create_permissions skips an app config without models_module, which the migration
    # state's stubs lack; the live registry's configs have it and are left as they are.)
    for app_config in apps.get_app_configs():
        missing = getattr(app_config, "models_module", None) is None
        if missing:
            app_config.models_module = True
        try:
            create_permissions(
                app_config,
                apps=apps,
                verbosity=0,
                using=schema_editor.connection.alias if schema_editor else "default",
            )
        finally:
            if missing:
                app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    wanted = list(Permission.objects.filter(content_type__app_label="triage", codename__in=PERMISSIONS))
    if len(wanted) != len(PERMISSIONS):
        raise RuntimeError(f"missing permissions for the clinicians group: {PERMISSIONS}")
    group.permissions.set(wanted)


class Migration(migrations.Migration):
    dependencies = [
        ("triage", "0004_securityevent"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    # Backwards keeps the group: its members would otherwise lose access silently.
    operations = [migrations.RunPython(create_clinicians_group, migrations.RunPython.noop)]
