"""Send budgets per channel, shared by every dispatcher process: a send takes a slot only while each of the
vendor's documented windows has room, so several workers together never exceed a robot's limit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import ChannelSend
from ecomflow.engine.events.channels.common import RateWindow
from ecomflow.engine.events.outbox import Deferred

UNLIMITED = 1_000_000


def lock_channel(session: Session, channel: str) -> None:
    """Serialise budget decisions of one channel across processes until this transaction ends."""
    # SQLite: every writing transaction already holds the database's write lock (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"ecomflow.channel:{channel}"})


def take_send_slot(session: Session, *, channel: str, windows: Sequence[RateWindow], now: datetime) -> int:
    """Record a send at `now` and return how many more the tightest window allows; raise Deferred when one is full."""
    if not windows:
        return UNLIMITED
    lock_channel(session, channel)
    longest = max(window.span for window in windows)
    session.execute(delete(ChannelSend).where(ChannelSend.channel == channel, ChannelSend.sent_at <= now - longest))
    sent = list(
        session.scalars(
            select(ChannelSend.sent_at)
            .where(ChannelSend.channel == channel, ChannelSend.sent_at > now - longest)
            .order_by(ChannelSend.sent_at)
        )
    )
    left = []
    for window in windows:
        in_window = [moment for moment in sent if moment > now - window.span]
        if len(in_window) >= window.limit:
            # The slot frees when the oldest send that fills the window leaves it.
            free_at = in_window[-window.limit] + window.span
            raise Deferred(free_at, f"channel {channel!r}: {window.limit} sends within {window.span} reached")
        left.append(window.limit - len(in_window) - 1)
    session.add(ChannelSend(channel=channel, sent_at=now))
    return min(left)
