"""Web sessions on the HTTP side: the signed cookie that carries a session's secret, and reading it back.

The sessions themselves are rows (engine/people/web_sessions.py): the cookie holds only a random
secret, signed so that a forged value is refused without a query. The CSRF token derives from the
secret (csrf.py), so it changes with every sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from ecomflow.api.web.signing import sign, unsign
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import principal_of
from ecomflow.engine.people.web_sessions import (
    EndReason,
    end_web_session,
    find_live_web_session,
    session_policy,
    touch_web_session,
)

SESSION_COOKIE = "ecf_session"
COOKIE_PATH = "/ui"  # the API under / never receives the web cookies
_PURPOSE = "session"


@dataclass(frozen=True)
class WebSession:
    """A signed-in user, their session's public id, and its secret (the CSRF token derives from it)."""

    principal: Principal
    id: str
    secret: str


def client_address(request: Request) -> str | None:
    """Return the client's address (behind a proxy: as uvicorn's --forwarded-allow-ips lets it through)."""
    return request.client.host if request.client else None


def set_session_cookie(
    response: Response, request: Request, *, secret: str, expires_at: datetime, now: datetime
) -> None:
    """Give the browser the new session's secret until the session's lifetime ends."""
    set_cookie(response, request, SESSION_COOKIE, sign(_PURPOSE, secret), max_age=expires_at - now)


def clear_session_cookie(response: Response) -> None:
    """Clear the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def current_session(request: Request, *, now: datetime, touch: bool) -> WebSession | None:
    """Return the live session the request's cookie opens, or None; when touch, note that it was used now.

    The check reads only; the last-seen time is a separate small write, at most once per touch interval.
    """
    secret = unsign(_PURPOSE, request.cookies.get(SESSION_COOKIE))
    if not secret:
        return None
    policy = session_policy()
    with read_scope() as db:
        found = find_live_web_session(db, secret=secret, now=now, policy=policy)
        if found is None:
            return None
        row, user = found
        principal = principal_of(db, user)
    if touch and policy.needs_touch(row, now=now):
        with session_scope() as db:
            touch_web_session(db, session_id=row.id, now=now, policy=policy)
    return WebSession(principal=principal, id=row.id, secret=secret)


def end_current_session(web_session: WebSession, *, now: datetime) -> None:
    """End the session the user signs out of: its cookie, replayed, opens nothing any more."""
    with session_scope() as db:
        end_web_session(
            db,
            session_id=web_session.id,
            actor=web_session.principal.name,
            reason=EndReason.SIGNED_OUT,
            now=now,
        )


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: timedelta | None = None
) -> None:
    """Set a web cookie: HttpOnly, SameSite=Lax, limited to /ui, Secure when the page came over https."""
    response.set_cookie(
        name,
        value,
        max_age=int(max_age.total_seconds()) if max_age else None,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
