"""Users, their roles, their API tokens (stored as SHA-256 hashes only) and their web passwords (scrypt)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import ApiToken, User, UserRole
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR, Principal
from ecomflow.engine.people.web_sessions import EndReason, end_web_sessions_of


def hash_token(token: str) -> str:
    """Return the stored form of a token; tokens are random, so a plain hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, *, name: str, roles: Iterable[str], known_roles: Iterable[str]) -> tuple[User, str]:
    """Create a user with roles and return it with a new token, shown only this once."""
    roles = sorted(set(roles))
    unknown = sorted(set(roles) - set(known_roles))
    if unknown or not roles:
        rule = f"unknown role(s) {', '.join(unknown)}" if unknown else "at least one role is required"
        raise ValidationFailed(f"roles: {rule}", problems=[FieldProblem("roles", "enum", f"roles: {rule}")])
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"user {name} already exists", user=name)
    user = User(name=name)
    session.add(user)
    session.flush()
    session.add_all(UserRole(user_id=user.id, role=role) for role in roles)
    token = issue_token(session, user=user)
    record_event(session, type="user.created", actor=SYSTEM_ACTOR, data={"user": name, "roles": roles})
    return user, token


def issue_token(session: Session, *, user: User) -> str:
    """Create a new API token for the user and return it in clear text."""
    token = "ecf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    return token


# One round trip for the user and their roles (a row per role; one with NULL role for a user without any),
# built once: composing the statement cost more CPU than running it.
_PRINCIPAL_OF_TOKEN = (
    select(User.name, UserRole.role)
    .join(ApiToken, ApiToken.user_id == User.id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None), User.active.is_(True))
)


def authenticate(connection: Session | Connection, token: str) -> Principal:
    """Return the principal a bearer token belongs to, or raise Unauthorized.

    Timing leaks nothing about the token: it is never compared as such. The database looks up
    its SHA-256 hash in a unique index, and how far a guess's hash matches a stored one says
    nothing about how close the guess is, so no constant-time compare is needed here.
    """
    rows = connection.execute(_PRINCIPAL_OF_TOKEN, {"token_hash": hash_token(token)}).all()
    if not rows:
        raise Unauthorized("the bearer token is unknown or revoked")
    return Principal(name=rows[0].name, roles=frozenset(row.role for row in rows if row.role is not None))


def roles_of(session: Session, *, user_id: int) -> list[str]:
    """Return the user's roles, sorted."""
    return sorted(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))


def find_user(session: Session, name: str) -> User | None:
    """Return the user of that name, active or not, or None."""
    return session.scalar(select(User).where(User.name == name))


def principal_of(session: Session, user: User) -> Principal:
    """Return the user as a principal with their roles."""
    return Principal(name=user.name, roles=frozenset(roles_of(session, user_id=user.id)))


def is_away(user: User, *, now: datetime) -> bool:
    """Tell whether the user is absent now: marked away, with no end or an end still ahead."""
    return user.away_since is not None and (user.away_until is None or user.away_until > now)


def available_principal(session: Session, name: str, *, field: str, now: datetime) -> Principal:
    """Return the user who is to receive work; raise ValidationFailed naming `field` if unknown, inactive or away."""
    user = find_user(session, name)
    if user is None or not user.active or is_away(user, now=now):
        rule, message = _unavailability(user, name)
        raise ValidationFailed(f"{field}: {message}", problems=[FieldProblem(field, rule, message)])
    return principal_of(session, user)


def _unavailability(user: User | None, name: str) -> tuple[str, str]:
    if user is None:
        return "exists", f"user {name} does not exist"
    if not user.active:
        return "active", f"user {name} is inactive"
    until = f" until {user.away_until.isoformat()}" if user.away_until else ""
    return "away", f"user {name} is away{until}" + (
        f"; their substitute is {user.substitute}" if user.substitute else ""
    )


def revoke_tokens(session: Session, *, name: str, actor: str = SYSTEM_ACTOR) -> int:
    """Revoke every token of a user; return how many were revoked."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        return 0
    tokens = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = utcnow()
    record_event(session, type="user.tokens_revoked", actor=actor, data={"user": name, "count": len(tokens)})
    return len(tokens)


@dataclass(frozen=True)
class RevokedAccess:
    """How many API tokens and web sessions of a user a revocation ended."""

    tokens: int
    web_sessions: int


def revoke_access(session: Session, *, name: str, actor: str = SYSTEM_ACTOR) -> RevokedAccess:
    """Revoke every token and end every web session of a user; raise NotFound for an unknown user."""
    user = find_user(session, name)
    if user is None:
        raise NotFound(f"user {name} does not exist", user=name)
    tokens = revoke_tokens(session, name=name, actor=actor)
    ended = end_web_sessions_of(session, user_id=user.id, actor=actor, reason=EndReason.REVOKED, now=utcnow())
    return RevokedAccess(tokens=tokens, web_sessions=ended)


def revoke_token(session: Session, *, token: str, actor: str) -> int:
    """Revoke one token (found by its hash, like authenticate); return 1, or 0 if it was unknown or revoked already."""
    row = session.scalar(
        select(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
        .with_for_update()
    )
    if row is None:
        return 0
    row.revoked_at = utcnow()
    record_event(session, type="user.token_revoked", actor=actor, data={"user": actor, "token_id": row.id})
    return 1


# scrypt at OWASP's N=2^14, r=8, p=5 (16 MiB, ~0.25 s); the stored string names them, so they can rise later.
PASSWORD_SCHEME = "scrypt"
PASSWORD_COST = {"n": 2**14, "r": 8, "p": 5}
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256
WRONG_CREDENTIALS = "the user name or password is wrong"
_MAX_SCRYPT_N = 2**20


def _scrypt(password: str, *, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem: scrypt needs 128·r·n bytes (plus a little); OpenSSL's default cap is 32 MiB.
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * r * n + 2**20)


def hash_password(password: str) -> str:
    """Return the stored form of a password: scheme, cost, random salt and hash in one string."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt=salt, **PASSWORD_COST)
    cost = "$".join(str(PASSWORD_COST[key]) for key in ("n", "r", "p"))
    return f"{PASSWORD_SCHEME}${cost}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_matches(stored: str | None, password: str) -> bool:
    """Tell whether the password hashes to the stored string; compare in constant time."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        n, r, p = int(n), int(r), int(p)
        if scheme != PASSWORD_SCHEME or not (1 < n <= _MAX_SCRYPT_N and 0 < r <= 32 and 0 < p <= 16):
            raise ValueError(scheme)
        expected = base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except ValueError:
        # An unusable stored value costs the same as a real check, so timing tells no one which users have one.
        _scrypt(password, salt=b"\0" * 16, **PASSWORD_COST)
        return False
    return hmac.compare_digest(_scrypt(password, salt=expected[0], n=n, r=r, p=p), expected[1])


def set_password(session: Session, *, name: str, password: str) -> User:
    """Give a user a new password for the web pages (8 to 256 characters, not only spaces); end their web sessions."""
    user = find_user(session, name)
    if user is None:
        raise NotFound(f"user {name} does not exist", user=name)
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS or not password.strip():
        rule = f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, not only spaces"
        raise ValidationFailed(rule, problems=[FieldProblem("password", "length", rule)])
    user.password_hash = hash_password(password)
    record_event(session, type="user.password_set", actor=SYSTEM_ACTOR, data={"user": name})
    session.flush()
    end_web_sessions_of(session, user_id=user.id, actor=SYSTEM_ACTOR, reason=EndReason.PASSWORD_CHANGED, now=utcnow())
    return user


def verify_password(session: Session, *, name: str, password: str) -> Principal:
    """Return the active user the name and password belong to; every mismatch raises the same Unauthorized."""
    user = find_user(session, name)
    usable = user is not None and user.active and len(password) <= MAX_PASSWORD_CHARS
    # Checked even without a usable user: an unknown name takes as long as a wrong password.
    if not password_matches(user.password_hash if usable else None, password[:MAX_PASSWORD_CHARS]):
        raise Unauthorized(WRONG_CREDENTIALS)
    return principal_of(session, user)
