"""Paid orders join waves (波次) per stock location; a wave closes on its window or its size and runs one fulfilment."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ecomflow.engine.db.platform_models import PlatformOrder


def order_changed(session: Session, order: PlatformOrder, *, before: str | None, actor: str) -> None:
    """React, in the import's transaction, to an order that is new (before None) or whose status changed."""
