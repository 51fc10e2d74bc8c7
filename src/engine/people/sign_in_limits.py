"""The sign-in rate limit: failed sign-ins counted per name typed and per client address.

`max_failures` failures of one name (or one address) within `window` lock it for `lock` from the
failure that reached the limit. Names are counted whether or not such a user exists, so a lock
tells no one who has an account. Failures are rows in the database: every API replica sees them.
Attempts refused by a lock are audited but not counted, so a lock ends on time even under attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import SignInFailure
from ecomflow.engine.events.audit import record_event

# Who an audit event of a failed sign-in names: nobody has proved who they are.
VISITOR_ACTOR = "visitor"
MAX_KEY_CHARS = 255
MAX_AUDITED_NAME_CHARS = 64
SIGN_IN_FAILED = "user.sign_in_failed"
SIGN_IN_REFUSED = "user.sign_in_refused"


class LimitScope(StrEnum):
    """What failures are counted against."""

    NAME = "name"
    ADDRESS = "address"


@dataclass(frozen=True, kw_only=True)
class SignInLimits:
    """How many failures within which window lock a name or an address, and for how long."""

    window: timedelta
    lock: timedelta
    max_per_name: int
    max_per_address: int

    def max_failures(self, scope: LimitScope) -> int:
        """Return how many failures lock the scope."""
        return self.max_per_name if scope is LimitScope.NAME else self.max_per_address


def sign_in_limits() -> SignInLimits:
    """Return the limits the settings configure."""
    settings = get_settings()
    return SignInLimits(
        window=timedelta(minutes=settings.sign_in_window_minutes),
        lock=timedelta(minutes=settings.sign_in_lock_minutes),
        max_per_name=settings.sign_in_max_failures_per_name,
        max_per_address=settings.sign_in_max_failures_per_address,
    )


@dataclass(frozen=True)
class SignInLock:
    """A name or an address that may not sign in until a moment."""

    scope: LimitScope
    until: datetime


def find_sign_in_lock(
    session: Session, *, name: str, client_address: str | None, now: datetime, limits: SignInLimits
) -> SignInLock | None:
    """Return the lock on the name or the address that lasts longest, or None if neither is locked."""
    locks = [
        lock
        for scope, key in _keys(name, client_address)
        if (lock := _lock_of(session, scope, key, now=now, limits=limits)) is not None
    ]
    return max(locks, key=lambda lock: lock.until, default=None)


def record_sign_in_failure(
    session: Session, *, name: str, client_address: str | None, now: datetime, limits: SignInLimits
) -> SignInLock | None:
    """Count a failed sign-in against the name and the address, audit it, and return the lock it leaves in force."""
    session.add_all(SignInFailure(scope=scope.value, key=key, at=now) for scope, key in _keys(name, client_address))
    session.flush()
    lock = find_sign_in_lock(session, name=name, client_address=client_address, now=now, limits=limits)
    data = _audit_data(name, client_address, lock)
    record_event(session, type=SIGN_IN_FAILED, actor=VISITOR_ACTOR, at=now, data=data)
    return lock


def record_refused_sign_in(
    session: Session, *, name: str, client_address: str | None, lock: SignInLock, now: datetime
) -> None:
    """Audit an attempt refused by a lock (its password was not checked)."""
    data = _audit_data(name, client_address, lock)
    record_event(session, type=SIGN_IN_REFUSED, actor=VISITOR_ACTOR, at=now, data=data)


def clear_name_failures(session: Session, *, name: str) -> int:
    """Forget the failures counted against a name (after its user signed in); the address keeps its count."""
    result = session.execute(
        delete(SignInFailure).where(SignInFailure.scope == LimitScope.NAME.value, SignInFailure.key == _name_key(name))
    )
    return result.rowcount


def prune_sign_in_failures(session: Session, *, now: datetime, limits: SignInLimits) -> int:
    """Delete failures too old to count towards any lock; return how many."""
    result = session.execute(delete(SignInFailure).where(SignInFailure.at <= now - limits.window - limits.lock))
    return result.rowcount


def _lock_of(
    session: Session, scope: LimitScope, key: str, *, now: datetime, limits: SignInLimits
) -> SignInLock | None:
    """Lock the key if its latest max_failures failures fall within one window, until lock after the newest."""
    limit = limits.max_failures(scope)
    latest = list(
        session.scalars(
            select(SignInFailure.at)
            .where(
                SignInFailure.scope == scope.value,
                SignInFailure.key == key,
                SignInFailure.at > now - limits.window - limits.lock,
            )
            .order_by(SignInFailure.at.desc())
            .limit(limit)
        )
    )
    if len(latest) < limit or latest[0] - latest[-1] >= limits.window:
        return None
    until = latest[0] + limits.lock
    return SignInLock(scope=scope, until=until) if until > now else None


def _keys(name: str, client_address: str | None) -> list[tuple[LimitScope, str]]:
    keys = [(LimitScope.NAME, _name_key(name))]
    if client_address:
        keys.append((LimitScope.ADDRESS, client_address[:MAX_KEY_CHARS]))
    return keys


def _name_key(name: str) -> str:
    # No user name is longer than 64 characters, so a clipped longer one never stands for a real user.
    return name[:MAX_KEY_CHARS]


def _audit_data(name: str, client_address: str | None, lock: SignInLock | None) -> dict[str, str | None]:
    return {
        "name": name[:MAX_AUDITED_NAME_CHARS],
        "client_address": client_address,
        "locked": lock.scope.value if lock else None,
        "locked_until": lock.until.isoformat() if lock else None,
    }
