"""Users, their roles and their API tokens (stored as SHA-256 hashes only)."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import record_event
from engine.clock import utcnow
from engine.errors import Conflict, Unauthorized, ValidationFailed
from engine.forms import FieldProblem
from engine.models import ApiToken, User, UserRole
from engine.principals import SYSTEM_ACTOR, Principal


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


def authenticate(session: Session, token: str) -> Principal:
    """Return the principal a bearer token belongs to, or raise Unauthorized."""
    row = session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.active.is_(True))
    ).first()
    if row is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    user = row[0]
    return Principal(name=user.name, roles=frozenset(roles_of(session, user_id=user.id)))


def roles_of(session: Session, *, user_id: int) -> list[str]:
    """Return the user's roles, sorted."""
    return sorted(session.scalars(select(UserRole.role).where(UserRole.user_id == user_id)))


def find_principal(session: Session, name: str) -> Principal | None:
    """Return the active user of that name as a principal, or None."""
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None:
        return None
    return Principal(name=user.name, roles=frozenset(roles_of(session, user_id=user.id)))


def revoke_tokens(session: Session, *, name: str) -> int:
    """Revoke every token of a user; return how many were revoked."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        return 0
    tokens = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = utcnow()
    record_event(session, type="user.tokens_revoked", actor=SYSTEM_ACTOR, data={"user": name, "count": len(tokens)})
    return len(tokens)
