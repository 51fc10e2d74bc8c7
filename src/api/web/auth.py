"""Web sessions: a signed, expiring cookie bound to the user and to their current password.

The cookie holds the user's id and name, when it was issued and expires, a random session
nonce (the CSRF token derives from it) and a fingerprint of the stored password hash, so a
new password ends every session signed in with the old one. Nothing is stored server-side.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session

from ecomflow.api.web.signing import mac, sign, unsign
from ecomflow.engine.db.models import User
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import find_user, principal_of

SESSION_COOKIE = "ecf_session"
SESSION_LIFETIME = timedelta(hours=12)  # a working day; then sign in again
COOKIE_PATH = "/ui"  # the API under / never receives the web cookies
_PURPOSE = "session"


@dataclass(frozen=True)
class WebSession:
    """A signed-in user and the nonce of their session."""

    principal: Principal
    nonce: str


def _password_fingerprint(user: User) -> str:
    return mac("password", user.password_hash or "")[:22]


def start_session(response: Response, request: Request, *, user: User, now: datetime) -> None:
    """Set a fresh session cookie for the user (a new nonce each time: no session fixation)."""
    expires = now + SESSION_LIFETIME
    payload = {
        "uid": user.id, "name": user.name, "iat": int(now.timestamp()), "exp": int(expires.timestamp()),
        "nonce": secrets.token_urlsafe(18), "pwd": _password_fingerprint(user),
    }
    set_cookie(response, request, SESSION_COOKIE, sign(_PURPOSE, json.dumps(payload)), max_age=SESSION_LIFETIME)


def end_session(response: Response) -> None:
    """Clear the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def read_session(session: Session, request: Request, *, now: datetime) -> WebSession | None:
    """Return the session the request's cookie proves, or None if absent, forged, expired or outdated."""
    payload = unsign(_PURPOSE, request.cookies.get(SESSION_COOKIE))
    if payload is None:
        return None
    try:
        claims = json.loads(payload)
        user_id, name, expires, nonce, fingerprint = (
            claims["uid"], claims["name"], claims["exp"], claims["nonce"], claims["pwd"]
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(expires, int) or expires <= now.timestamp() or not isinstance(name, str):
        return None
    user = find_user(session, name)
    if user is None or user.id != user_id or not user.active or user.password_hash is None:
        return None
    if fingerprint != _password_fingerprint(user):
        return None
    return WebSession(principal=principal_of(session, user), nonce=str(nonce))


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: timedelta | None = None) -> None:
    """Set a web cookie: HttpOnly, SameSite=Lax, limited to /ui, Secure when the page came over https."""
    response.set_cookie(
        name, value, max_age=int(max_age.total_seconds()) if max_age else None, path=COOKIE_PATH,
        httponly=True, samesite="lax", secure=request.url.scheme == "https",
    )
