"""Reading what flows left in the database, for e2e assertions."""

from __future__ import annotations

from sqlalchemy import select

from ecomflow.engine.db.models import CatalogEntry, Creative, Timer
from ecomflow.engine.db.sessions import session_scope


def catalog_entries(instance_id: str) -> list[CatalogEntry]:
    """Return what an instance published."""
    with session_scope() as session:
        return list(session.scalars(select(CatalogEntry).where(CatalogEntry.instance_id == instance_id)))


def go_live_timer(instance_id: str) -> Timer | None:
    """Return the instance's go-live timer, if armed."""
    with session_scope() as session:
        return session.scalar(select(Timer).where(Timer.instance_id == instance_id, Timer.step_key == "go_live"))


def creatives_of(instance_id: str) -> list[Creative]:
    """Return what an instance filed in the design archive."""
    with session_scope() as session:
        return list(session.scalars(select(Creative).where(Creative.instance_id == instance_id)))
