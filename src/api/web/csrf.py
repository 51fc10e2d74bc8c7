"""CSRF tokens: derived from the session's nonce and checked on every POST.

Before sign-in the nonce is a pre-session cookie's.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from ecomflow.api.web.auth import set_cookie
from ecomflow.api.web.signing import mac, sign, unsign

CSRF_FIELD = "csrf_token"
# Before sign-in the login and language forms still need a token: it comes from this cookie's nonce.
PRE_SESSION_COOKIE = "ecf_pre"
_PRE_PURPOSE = "pre-session"


def csrf_token(nonce: str) -> str:
    """Return the token every POST form of this session carries."""
    return mac("csrf", nonce)


def token_matches(submitted: object, nonce: str | None) -> bool:
    """Tell whether a submitted token belongs to the nonce; compared in constant time."""
    if nonce is None or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), csrf_token(nonce).encode())


def pre_session_nonce(request: Request) -> str | None:
    """Return the nonce of the request's pre-session cookie, if it carries a valid one."""
    return unsign(_PRE_PURPOSE, request.cookies.get(PRE_SESSION_COOKIE))


def new_pre_session_nonce() -> str:
    """Return a fresh nonce for a visitor who is not signed in."""
    return secrets.token_urlsafe(18)


def set_pre_session_cookie(response: Response, request: Request, nonce: str) -> None:
    """Remember a visitor's pre-session nonce until the browser closes."""
    set_cookie(response, request, PRE_SESSION_COOKIE, sign(_PRE_PURPOSE, nonce))
