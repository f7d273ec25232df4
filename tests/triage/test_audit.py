import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from triage import services
from triage.audit import GENESIS, append_event, verify_chain
from triage.models import AuditEvent, AuditTamperError

pytestmark = pytest.mark.django_db


def make_session():
    session, _token = services.create_session(subject="self", age_band="", pregnant=None, consent=True)
    return session


def test_chain_links_each_event_to_the_previous_one():
    session = make_session()
    append_event(session, "state_transition", {"from": "idle", "to": "listening"})
    append_event(session, "patient_turn", {"text": "I have a headache", "n": 1.5})
    events = list(AuditEvent.objects.filter(session=session).order_by("seq"))
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert verify_chain(session.pk) is None


def test_chains_are_per_session():
    a, b = make_session(), make_session()
    append_event(a, AuditEvent.Kind.SOCKET_CONNECTED, {})
    append_event(b, AuditEvent.Kind.SOCKET_DISCONNECTED, {})
    assert AuditEvent.objects.get(session=b, seq=2).prev_hash == AuditEvent.objects.get(session=b, seq=1).hash
    assert verify_chain(a.pk) is None and verify_chain(b.pk) is None


def test_an_event_kind_outside_the_defined_kinds_is_refused_before_anything_is_written():
    session = make_session()
    with pytest.raises(ValueError):
        append_event(session, "note", {"a": 1})
    assert list(AuditEvent.objects.filter(session=session).values_list("kind", flat=True)) == [
        AuditEvent.Kind.SESSION_CREATED
    ]
    # a kind given as its plain string is stored as that string, and the chain verifies
    event = append_event(session, "patient_turn", {"text": "I have a headache"})
    assert event.kind == "patient_turn" and type(event.kind) is str
    assert verify_chain(session.pk) is None


def test_every_kind_the_code_writes_is_a_defined_kind():
    """The kinds passed as literals to the audit writers anywhere in triage/ (read from the
    source, so a new write with a misspelt kind fails here rather than at run time)."""
    import ast
    from pathlib import Path

    writers = {"append_event": 1, "record_audit": 1, "record_connection": 1}
    found: set[str] = set()
    calls = 0
    for path in (Path(__file__).resolve().parents[2] / "triage").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func.args[0] if isinstance(node.func, ast.Call) and node.func.args else node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in writers and len(node.args) > writers[name]:
                calls += 1
                arg = node.args[writers[name]]
                found |= {
                    c.value for c in ast.walk(arg) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    assert calls >= 20, f"only {calls} audit writes found: the scan is broken"
    assert found <= set(AuditEvent.Kind.values), found - set(AuditEvent.Kind.values)


def test_application_refuses_updates_and_deletes():
    session = make_session()
    event = append_event(session, AuditEvent.Kind.PIPELINE_ERROR, {"a": 1})
    event.payload = {"a": 2}
    with pytest.raises(AuditTamperError):
        event.save()
    with pytest.raises(AuditTamperError):
        event.delete()
    with pytest.raises(AuditTamperError):
        AuditEvent.objects.filter(pk=event.pk).update(kind="other")
    with pytest.raises(AuditTamperError):
        AuditEvent.objects.filter(session=session).delete()
    assert verify_chain(session.pk) is None


def tamper(sql: str, params) -> None:
    """Change a row behind the application's back, as an attacker with database access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The database trigger refuses this too; a superuser can switch triggers off.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_verify_audit_detects_a_tampered_row():
    session = make_session()
    for i in range(4):
        append_event(session, "patient_turn", {"text": f"utterance {i}"})
    target = AuditEvent.objects.get(session=session, seq=3)
    tamper("UPDATE triage_auditevent SET payload = %s WHERE id = %s", ['{"text": "edited"}', target.pk])
    link = verify_chain(session.pk)
    assert link is not None and link.seq == 3 and "altered" in link.problem
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", str(session.pk), stdout=out)
    assert excinfo.value.returncode == 1
    assert "seq 3" in out.getvalue()


def test_verify_audit_detects_a_removed_row():
    session = make_session()
    for i in range(3):
        append_event(session, "patient_turn", {"text": f"utterance {i}"})
    tamper(
        "DELETE FROM triage_auditevent WHERE session_id = %s AND seq = 2",
        [session.pk.hex if connection.vendor == "sqlite" else str(session.pk)],
    )
    link = verify_chain(session.pk)
    assert link is not None and link.seq == 3


def test_verify_audit_ok_reports_counts():
    session = make_session()
    append_event(session, AuditEvent.Kind.SOCKET_CONNECTED, {})
    append_event(session, AuditEvent.Kind.SOCKET_DISCONNECTED, {})
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    # one session however many events it has (the model's ordering must not split DISTINCT)
    assert "OK: 1 session chain(s)" in out.getvalue(), out.getvalue()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgres_trigger_refuses_raw_updates():
    from django.db import DatabaseError, transaction

    session = make_session()
    event = append_event(session, AuditEvent.Kind.SOCKET_CONNECTED, {})
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE triage_auditevent SET kind = 'y' WHERE id = %s", [event.pk])
