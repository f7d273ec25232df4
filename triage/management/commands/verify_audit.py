"""Verify the audit hash chain of one session, or of every session."""

from django.core.management.base import BaseCommand, CommandError

from triage.audit import verify_chain
from triage.models import AuditEvent, TriageSession


class Command(BaseCommand):
    help = "Verify the tamper-evident audit chain; reports the first broken link and exits 1 if any."

    def add_arguments(self, parser):
        parser.add_argument("session_id", nargs="?", help="Session UUID (default: all sessions)")

    def handle(self, *args, session_id=None, **options):
        if session_id:
            if not TriageSession.objects.filter(pk=session_id).exists():
                raise CommandError(f"No session {session_id}.")
            session_ids = [session_id]
        else:
            session_ids = list(
                AuditEvent.objects.order_by("session_id").values_list("session_id", flat=True).distinct()
            )
        broken = 0
        events = 0
        for sid in session_ids:
            link = verify_chain(sid)
            events += AuditEvent.objects.filter(session_id=sid).count()
            if link is not None:
                broken += 1
                self.stdout.write(
                    self.style.ERROR(
                        f"BROKEN session {link.session_id}: event seq {link.seq} (id {link.event_id}): {link.problem}"
                    )
                )
        if broken:
            raise CommandError(f"{broken} of {len(session_ids)} session chain(s) broken.", returncode=1)
        self.stdout.write(
            self.style.SUCCESS(f"OK: {len(session_ids)} session chain(s), {events} event(s) verified.")
        )
