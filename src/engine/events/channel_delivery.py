"""Deliver one queued channel message; fold the backlog into one digest when a burst would exceed the rate limit.

Under the channel's lock, a delivery takes a send slot (or waits, outbox.Deferred) and, when more
messages of the channel wait than the window has slots left, leases as many of them as fit in one
message. It sends outside any transaction. On success the message and every one it carried are marked
delivered together, those with `delivered_with` naming the carrier, so none is ever sent again; on a
refusal the carried ones go back to wait (or fail, past their last attempt) and the carrier is retried.
"""

from __future__ import annotations

from datetime import datetime
from types import ModuleType

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import outbox
from ecomflow.engine.events.channels import SENDERS
from ecomflow.engine.events.channels.common import ChannelRefused
from ecomflow.engine.events.compose import compose
from ecomflow.engine.events.rate_limits import take_send_slot
from ecomflow.engine.events.report_files import with_daily_workbooks
from ecomflow.engine.events.webhooks import MAX_BACKOFF

FOLD_CANDIDATES = 200
# A role's morning digest is a digest already: it goes as itself, never inside another.
UNFOLDABLE_EVENTS = frozenset({"daily_digest"})


def deliver_channel_message(message: OutboxMessage, *, now: datetime) -> None:
    """Send one leased channel message (with the backlog it carries); raise ChannelRefused to retry it."""
    settings = get_settings()
    channel = settings.channel(message.payload["channel"])
    if channel is None or channel.type != message.payload["channel_type"]:
        raise outbox.Undeliverable(f"channel {message.payload['channel']!r} is no longer configured")
    sender = SENDERS[channel.type]
    with session_scope() as session:
        left = take_send_slot(session, channel=channel.name, windows=sender.WINDOWS, now=now)
        carried = _fold_backlog(session, message, sender=sender, slots_left=left, now=now)
    payloads = [message.payload, *(m.payload for m in carried)]
    outgoing = compose(payloads, fits=sender.fits)
    if channel.type == "email":
        # Only email takes a file; the robots' messages link to the download instead.
        outgoing = with_daily_workbooks(outgoing, payloads)
    try:
        sender.send(channel, outgoing, timeout=settings.channel_timeout_seconds)
    except ChannelRefused as refused:
        with session_scope() as session:
            _give_back(session, carried, error=str(refused), now=now)
        if message.attempts >= settings.channel_max_attempts:
            raise outbox.Undeliverable(f"{refused}; given up after {message.attempts} attempts") from None
        raise
    with session_scope() as session:
        _mark_carried(session, carrier=message.id, carried=[m.id for m in carried], now=now)


def _fold_backlog(
    session: Session, message: OutboxMessage, *, sender: ModuleType, slots_left: int, now: datetime
) -> list[OutboxMessage]:
    """Lease the channel's waiting messages that fit beside this one, when they outnumber the slots left."""
    if message.payload["event"] in UNFOLDABLE_EVENTS:
        return []
    waiting = [
        candidate
        for candidate in session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.kind == outbox.CHANNEL,
                OutboxMessage.id != message.id,
                OutboxMessage.payload["channel"].as_string() == message.payload["channel"],
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.available_at <= now,
                (OutboxMessage.locked_until.is_(None)) | (OutboxMessage.locked_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(FOLD_CANDIDATES)
        )
        if candidate.payload["event"] not in UNFOLDABLE_EVENTS
    ]
    if len(waiting) <= slots_left:
        return []
    chosen: list[OutboxMessage] = []
    for candidate in waiting:
        if not sender.fits(
            compose([message.payload, *(m.payload for m in chosen), candidate.payload], fits=sender.fits)
        ):
            break
        chosen.append(candidate)
    seconds = get_settings().outbox_lease_seconds
    leased = [outbox.lease(session, message_id=m.id, now=now, seconds=seconds) for m in chosen]
    return [m for m in leased if m is not None]


def _give_back(session: Session, carried: list[OutboxMessage], *, error: str, now: datetime) -> None:
    """Return carried messages to the queue after a refused digest; fail those past their last attempt."""
    max_attempts = get_settings().channel_max_attempts
    for message in carried:
        if message.attempts >= max_attempts:
            outbox.mark_failed(session, message_id=message.id, now=now, error=f"{error} (in a digest)")
        else:
            outbox.mark_retry(
                session, message_id=message.id, attempts=message.attempts, now=now, error=error, max_backoff=MAX_BACKOFF
            )


def _mark_carried(session: Session, *, carrier: int, carried: list[int], now: datetime) -> None:
    """Mark the carrier and what it carried delivered in one transaction: none of them is sent again."""
    outbox.mark_delivered(session, message_id=carrier, now=now)
    if carried:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(carried))
            .values(delivered_at=now, locked_until=None, last_error=None, delivered_with=carrier)
            .execution_options(synchronize_session=False)
        )
