"""Web sessions kept in the database, so that each one can be listed and ended.

A session starts at sign-in and ends on sign-out, on a new password, on revocation (`users revoke`,
POST /users/{name}/tokens/revoke, DELETE /me/sessions/{id}), when signing in again in the same
browser, or once idle or past its lifetime. Every end is one audit event per session.

The browser's cookie holds a random secret; the row keeps only its SHA-256 (secrets are random, as
API tokens are, so a plain hash suffices) and a public id, which proves nothing and names the
session in GET /me/sessions. Checking a session is a read; its last-seen time is a separate small
write, at most once per `touch_after`, so pages keep reading in read-only transactions.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import User, WebSession
from ecomflow.engine.errors import NotFound
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR

MAX_ADDRESS_CHARS = 64
MAX_USER_AGENT_CHARS = 200
# How many timed-out sessions one sweep transaction ends; the next sweep takes the rest.
SWEEP_BATCH = 200
SESSION_STARTED = "web_session.started"
SESSION_ENDED = "web_session.ended"


class EndReason(StrEnum):
    """Why a web session ended; stored on the row and in its audit event."""

    SIGNED_OUT = "signed_out"
    PASSWORD_CHANGED = "password_changed"
    REVOKED = "revoked"
    ENDED_BY_USER = "ended_by_user"
    REPLACED = "replaced"
    IDLE = "idle"
    EXPIRED = "expired"


@dataclass(frozen=True, kw_only=True)
class SessionPolicy:
    """How long a session lives, how long it may sit unused, and how often its last-seen time is written."""

    lifetime: timedelta
    idle: timedelta
    touch_after: timedelta

    def is_live(self, row: WebSession, *, now: datetime) -> bool:
        """Tell whether the session is neither ended, past its lifetime, nor idle too long."""
        return row.revoked_at is None and now < row.expires_at and now < self.idle_until(row)

    def idle_until(self, row: WebSession) -> datetime:
        """Return when the session goes idle if it is not used again."""
        return row.last_seen_at + self.idle

    def ends_if_unused(self, row: WebSession) -> datetime:
        """Return when the session ends if it is not used again: idle, or its lifetime over if that comes first."""
        return min(self.idle_until(row), row.expires_at)

    def needs_touch(self, row: WebSession, *, now: datetime) -> bool:
        """Tell whether the last-seen time is old enough to be written again."""
        return now - row.last_seen_at >= self.touch_after


def session_policy() -> SessionPolicy:
    """Return the policy the settings configure."""
    settings = get_settings()
    return SessionPolicy(
        lifetime=timedelta(hours=settings.web_session_lifetime_hours),
        idle=timedelta(minutes=settings.web_session_idle_minutes),
        touch_after=timedelta(seconds=settings.web_session_touch_seconds),
    )


def hash_session_secret(secret: str) -> str:
    """Return the stored form of a session secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class StartedSession:
    """A new session's row and its secret, which only the cookie ever holds."""

    row: WebSession
    secret: str


def start_web_session(
    session: Session,
    *,
    user: User,
    client_address: str | None,
    user_agent: str | None,
    now: datetime,
    policy: SessionPolicy,
) -> StartedSession:
    """Start a session for the user with a fresh random secret (a new one at every sign-in: no fixation)."""
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        user_id=user.id,
        secret_hash=hash_session_secret(secret),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.lifetime,
        client_address=_clip(client_address, MAX_ADDRESS_CHARS),
        user_agent=_clip(user_agent, MAX_USER_AGENT_CHARS),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        type=SESSION_STARTED,
        actor=user.name,
        at=now,
        data={"user": user.name, "session": row.id, "client_address": row.client_address},
    )
    return StartedSession(row=row, secret=secret)


def find_live_web_session(
    session: Session, *, secret: str, now: datetime, policy: SessionPolicy
) -> tuple[WebSession, User] | None:
    """Return the live session the secret opens and its active user, or None."""
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.secret_hash == hash_session_secret(secret), User.active.is_(True))
    ).first()
    if found is None or not policy.is_live(found[0], now=now):
        return None
    return found[0], found[1]


def touch_web_session(session: Session, *, session_id: str, now: datetime, policy: SessionPolicy) -> bool:
    """Record that the session was used now; tell whether this wrote (a racing request may have just done it)."""
    result = session.execute(
        update(WebSession)
        .where(
            WebSession.id == session_id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
            # Never revive a session that has already sat idle too long, nor write again within touch_after.
            WebSession.last_seen_at > now - policy.idle,
            WebSession.last_seen_at <= now - policy.touch_after,
        )
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def list_live_web_sessions(
    session: Session, *, user_name: str, now: datetime, policy: SessionPolicy
) -> list[WebSession]:
    """Return the user's live sessions, the most recently used first."""
    rows = session.scalars(
        select(WebSession)
        .join(User, User.id == WebSession.user_id)
        .where(User.name == user_name, WebSession.revoked_at.is_(None), WebSession.expires_at > now)
        .order_by(WebSession.last_seen_at.desc(), WebSession.id)
    )
    return [row for row in rows if policy.is_live(row, now=now)]


def end_web_session(session: Session, *, session_id: str, actor: str, reason: EndReason, now: datetime) -> bool:
    """End one session; tell whether it was live until now."""
    return bool(_end(session, _candidates(session, WebSession.id == session_id), actor=actor, reason=reason, now=now))


def end_own_web_session(
    session: Session, *, user_name: str, session_id: str, now: datetime, policy: SessionPolicy
) -> None:
    """End one of the user's own live sessions; any other id does not exist for them."""
    row = session.scalar(
        select(WebSession)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == session_id, User.name == user_name)
    )
    if row is None or not policy.is_live(row, now=now):
        raise NotFound(f"web session {session_id} does not exist or has ended", session_id=session_id)
    end_web_session(session, session_id=session_id, actor=user_name, reason=EndReason.ENDED_BY_USER, now=now)


def end_web_sessions_of(session: Session, *, user_id: int, actor: str, reason: EndReason, now: datetime) -> int:
    """End every session of a user; return how many were live."""
    return len(_end(session, _candidates(session, WebSession.user_id == user_id), actor=actor, reason=reason, now=now))


def end_timed_out_web_sessions(session: Session, *, now: datetime, policy: SessionPolicy) -> int:
    """Mark one batch of sessions past their lifetime or idle time as ended; return how many."""
    expired = _candidates(session, WebSession.expires_at <= now, limit=SWEEP_BATCH)
    ended = _end(session, expired, actor=SYSTEM_ACTOR, reason=EndReason.EXPIRED, now=now)
    idle = _candidates(session, WebSession.last_seen_at <= now - policy.idle, limit=SWEEP_BATCH)
    ended += _end(session, idle, actor=SYSTEM_ACTOR, reason=EndReason.IDLE, now=now)
    return len(ended)


def _candidates(session: Session, condition: ColumnElement[bool], *, limit: int | None = None) -> list[tuple[str, str]]:
    """Return (session id, user name) of the sessions not yet ended that meet the condition."""
    query = (
        select(WebSession.id, User.name)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.revoked_at.is_(None), condition)
        .order_by(WebSession.id)
        .limit(limit)
    )
    return [(session_id, name) for session_id, name in session.execute(query)]


def _end(
    session: Session, candidates: Sequence[tuple[str, str]], *, actor: str, reason: EndReason, now: datetime
) -> list[str]:
    """End the candidates still live (a compare-and-set, so racing enders record each end once); return their ids."""
    if not candidates:
        return []
    ended = set(
        session.scalars(
            update(WebSession)
            .where(WebSession.id.in_([session_id for session_id, _ in candidates]), WebSession.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason.value)
            .returning(WebSession.id)
            .execution_options(synchronize_session=False)
        )
    )
    for session_id, user_name in candidates:
        if session_id in ended:
            record_event(
                session,
                type=SESSION_ENDED,
                actor=actor,
                at=now,
                data={"user": user_name, "session": session_id, "reason": reason.value},
            )
    return [session_id for session_id, _ in candidates if session_id in ended]


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else None
