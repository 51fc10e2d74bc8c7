"""The pushed feed from ERPs and middleware: a signed batch of orders, refunds or reviews, written all or nothing.

The sender signs each request with its source's secret:

    X-Ecomflow-Timestamp: 1764986400                       (unix seconds)
    X-Ecomflow-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>
    X-Ecomflow-Delivery:  <the sender's id of this delivery, reused on its retries>

A request signed more than the window (5 minutes) away from the server's clock is refused, so a captured
request cannot be replayed later; a repeated delivery id is acknowledged and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ecomflow.engine.db.platform_models import ImportRun, InboundDelivery
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Unauthorized, ValidationFailed
from ecomflow.engine.intake import ingest
from ecomflow.engine.intake.push_events import Batch

SIGNATURE_PREFIX = "sha256="
MAX_DELIVERY_ID = 128


def signed_text(timestamp: str, body: bytes) -> bytes:
    """Return exactly what is signed: the timestamp header's value, a dot, then the raw body."""
    return timestamp.encode("ascii") + b"." + body


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Ecomflow-Signature value of a body sent at the timestamp."""
    digest = hmac.new(secret.encode("utf-8"), signed_text(timestamp, body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(
    *,
    secret: str | None,
    source: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window_seconds: int,
) -> None:
    """Raise Unauthorized unless the source has a secret, the timestamp is in the window and the signature matches."""
    if secret is None:
        raise Unauthorized(f"source {source!r} has no inbound secret configured; it may not push", source=source)
    if not timestamp or not timestamp.isdigit():
        raise Unauthorized("X-Ecomflow-Timestamp must be the signing time in unix seconds")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > window_seconds:
        raise Unauthorized(
            f"X-Ecomflow-Timestamp is {int(skew)} s from the server's clock; the window is {window_seconds} s",
            source=source,
        )
    expected = sign(secret, timestamp, body)
    # Constant time: the comparison must not tell an attacker how much of a guess was right.
    if not signature or not hmac.compare_digest(expected.encode(), signature.strip().encode("ascii", "replace")):
        raise Unauthorized("X-Ecomflow-Signature does not match the body signed with the source's secret")


def check_delivery_id(delivery_id: str | None) -> str:
    """Return the delivery id, or raise ValidationFailed naming the header."""
    value = (delivery_id or "").strip()
    if not value or len(value) > MAX_DELIVERY_ID:
        message = f"X-Ecomflow-Delivery must be 1 to {MAX_DELIVERY_ID} characters: the sender's id of this delivery"
        raise ValidationFailed(message, problems=[FieldProblem("X-Ecomflow-Delivery", "required", message)])
    return value


@dataclass(frozen=True)
class Receipt:
    """What the sender is told: a new delivery's import run and counts, or that it was a duplicate."""

    duplicate: bool
    import_run_id: str | None
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def receive(session: Session, *, source: str, delivery_id: str, batch: Batch) -> Receipt:
    """Write the delivery, its import run and its records in the session's one transaction, or nothing.

    A record the import refuses raises ValidationFailed, and the caller's transaction writes none of the batch:
    the sender fixes it and sends the batch again, rather than guessing which half arrived.
    """
    delivery = InboundDelivery(source=source, delivery_id=delivery_id)
    if not insert_unless_exists(session, delivery):
        existing = session.get(InboundDelivery, (source, delivery_id))
        return Receipt(duplicate=True, import_run_id=existing.import_run_id if existing else None)
    actor = f"push:{source}"
    run = ImportRun(kind=batch.kind, platform=batch.platform, source=actor, actor=actor)
    session.add(run)
    session.flush()
    ingest.apply(session, batch.kind, batch.records, actor=actor, run=run)
    ingest.finish(session, run, actor=actor)
    delivery.import_run_id = run.id
    return Receipt(
        duplicate=False, import_run_id=run.id, created=run.created, updated=run.updated, unchanged=run.unchanged
    )
