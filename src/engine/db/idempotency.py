"""Stored first answers for requests that carry an Idempotency-Key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import IdempotentResponse

__all__ = ["MAX_KEY_CHARS", "IdempotentResponse", "find_response", "save_response"]
MAX_KEY_CHARS = 128


def find_response(session: Session, *, user: str, key: str) -> IdempotentResponse | None:
    """Return the stored answer to this user's earlier request with the key."""
    return session.scalar(
        select(IdempotentResponse).where(IdempotentResponse.user_name == user, IdempotentResponse.key == key)
    )


def save_response(session: Session, *, user: str, key: str, path: str, status_code: int, body: dict[str, Any]) -> None:
    """Store the answer in the same transaction as the change it reports."""
    session.add(IdempotentResponse(user_name=user, key=key, request_path=path, status_code=status_code, body=body))
