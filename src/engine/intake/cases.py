"""Refund requests start and move returns_exchange cases; middle and bad reviews (中差评) reach the follow-up."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ecomflow.engine.db.platform_models import PlatformRefund, PlatformReview


def refund_changed(session: Session, refund: PlatformRefund, *, before: str | None, actor: str) -> None:
    """React, in the import's transaction, to a refund request that is new (before None) or whose status changed."""


def review_changed(session: Session, review: PlatformReview, *, before: int | None, actor: str) -> None:
    """React, in the import's transaction, to a review that is new (before None) or whose rating changed."""
