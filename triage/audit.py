"""Tamper-evident audit trail: each session's events form a SHA-256 hash chain.

hash_n = sha256(prev_hash || canonical_json(session, seq, kind, actor, created_at, payload)).
Changing, removing or reordering any row breaks every later link, which ``verify_chain`` finds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import AuditEvent, TriageSession

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(
    prev_hash: str, *, session_id: str, seq: int, kind: str, actor: str, created_at, payload
) -> str:
    body = canonical_json(
        {
            "session": str(session_id),
            "seq": seq,
            "kind": kind,
            "actor": actor,
            "created_at": created_at.isoformat(timespec="microseconds"),
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append_event(
    session: TriageSession | str,
    kind: AuditEvent.Kind | str,
    payload: dict | None = None,
    actor: str = "system",
) -> AuditEvent:
    """Append one event to the session's chain (serialised per session). ``kind`` is one of
    ``AuditEvent.Kind``; any other value raises ValueError before anything is written."""
    kind = AuditEvent.Kind(kind).value  # plain str: what is hashed is what the database returns
    session_id = session.pk if isinstance(session, TriageSession) else session
    # Round-trip through canonical JSON so what is hashed is exactly what the database returns.
    normalised = json.loads(canonical_json(payload or {}))
    with transaction.atomic():
        # Row lock on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE (settings).
        TriageSession.objects.select_for_update().only("pk").get(pk=session_id)
        last = AuditEvent.objects.filter(session_id=session_id).order_by("-seq").only("seq", "hash").first()
        seq = (last.seq + 1) if last else 1
        prev_hash = last.hash if last else GENESIS
        created_at = timezone.now()
        event = AuditEvent(
            session_id=session_id,
            seq=seq,
            kind=kind,
            actor=actor,
            payload=normalised,
            created_at=created_at,
            prev_hash=prev_hash,
            hash=compute_hash(
                prev_hash,
                session_id=session_id,
                seq=seq,
                kind=kind,
                actor=actor,
                created_at=created_at,
                payload=normalised,
            ),
        )
        event.save()
    return event


@dataclass(frozen=True)
class BrokenLink:
    session_id: str
    seq: int
    event_id: int
    problem: str


def verify_chain(session_id) -> BrokenLink | None:
    """The first broken link of one session's chain, or None when it verifies."""
    prev_hash = GENESIS
    expected_seq = 1
    for event in AuditEvent.objects.filter(session_id=session_id).order_by("seq").iterator():
        if event.seq != expected_seq:
            return BrokenLink(str(session_id), event.seq, event.pk, f"sequence gap: expected {expected_seq}")
        if event.prev_hash != prev_hash:
            return BrokenLink(
                str(session_id), event.seq, event.pk, "prev_hash does not match the previous event"
            )
        recomputed = compute_hash(
            prev_hash,
            session_id=event.session_id,
            seq=event.seq,
            kind=event.kind,
            actor=event.actor,
            created_at=event.created_at,
            payload=event.payload,
        )
        if recomputed != event.hash:
            return BrokenLink(
                str(session_id), event.seq, event.pk, "content does not match its hash (row altered)"
            )
        prev_hash = event.hash
        expected_seq += 1
    return None
