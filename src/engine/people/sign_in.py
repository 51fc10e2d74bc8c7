"""Signing in to the web pages: the rate limit, the password check, then a failure counted or a fresh session.

The lock check and the password check (scrypt, ~0.25 s) read in a read-only transaction, so on SQLite
no sign-in holds the write lock while it hashes; the outcome is written in a second, short one.
Two attempts racing past the lock check may both be counted: a burst gets at most its own size
past the limit, never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.errors import TooManyAttempts, Unauthorized
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.sign_in_limits import (
    LimitScope,
    SignInLock,
    clear_name_failures,
    find_sign_in_lock,
    record_refused_sign_in,
    record_sign_in_failure,
    sign_in_limits,
)
from ecomflow.engine.people.users import WRONG_CREDENTIALS, find_user, verify_password
from ecomflow.engine.people.web_sessions import EndReason, end_web_session, session_policy, start_web_session


@dataclass(frozen=True)
class SignedIn:
    """A user who signed in, their new session's public id and secret (for the cookie only)."""

    principal: Principal
    session_id: str
    secret: str
    expires_at: datetime


def sign_in(
    *,
    name: str,
    password: str,
    client_address: str | None,
    user_agent: str | None,
    now: datetime,
    replacing: str | None = None,
) -> SignedIn:
    """Start a session for the name and password; raise TooManyAttempts while locked, else Unauthorized on a mismatch.

    replacing: the id of the session this browser had; it ends, so one browser holds one session.
    """
    limits = sign_in_limits()
    principal: Principal | None = None
    with read_scope() as session:
        lock = find_sign_in_lock(session, name=name, client_address=client_address, now=now, limits=limits)
        if lock is None:
            try:
                principal = verify_password(session, name=name, password=password)
            except Unauthorized:
                principal = None
    with session_scope() as session:
        if lock is not None:
            record_refused_sign_in(session, name=name, client_address=client_address, lock=lock, now=now)
        elif principal is None:
            lock = record_sign_in_failure(session, name=name, client_address=client_address, now=now, limits=limits)
        else:
            user = find_user(session, name)
            if user is None or not user.active:
                # Deactivated between the two transactions: as if the password had not matched.
                raise Unauthorized(WRONG_CREDENTIALS)
            clear_name_failures(session, name=name)
            if replacing is not None:
                end_web_session(session, session_id=replacing, actor=principal.name, reason=EndReason.REPLACED, now=now)
            started = start_web_session(
                session,
                user=user,
                client_address=client_address,
                user_agent=user_agent,
                now=now,
                policy=session_policy(),
            )
            return SignedIn(
                principal=principal,
                session_id=started.row.id,
                secret=started.secret,
                expires_at=started.row.expires_at,
            )
    # Raised after the commit: the failure or refusal is recorded either way.
    if lock is not None:
        raise _locked(lock)
    raise Unauthorized(WRONG_CREDENTIALS)


def _locked(lock: SignInLock) -> TooManyAttempts:
    subject = "this user name" if lock.scope is LimitScope.NAME else "this client address"
    detail = f"too many failed sign-ins: {subject} is locked until {lock.until.isoformat()}"
    return TooManyAttempts(detail, scope=lock.scope.value, until=lock.until)
