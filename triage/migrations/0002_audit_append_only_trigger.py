"""On PostgreSQL the database itself refuses UPDATE and DELETE of audit rows, so even code
that bypasses the ORM (or a DBA's slip) cannot alter the trail silently."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION triage_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'triage_auditevent is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON triage_auditevent
    FOR EACH ROW EXECUTE FUNCTION triage_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_append_only ON triage_auditevent;
DROP FUNCTION IF EXISTS triage_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("triage", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
