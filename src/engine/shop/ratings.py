"""What ecomflow asks of the marketplace (outside ecomflow); the embedded default reads reported ratings."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from ecomflow.engine.db.models import OrderRating
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


class Marketplace(Protocol):
    """The shop platform as ecomflow sees it."""

    def order_rating(self, session: Session, *, order_id: str) -> int | None:
        """Return the customer's rating of the order (1–5), or None if not rated."""
        ...


class ReportedRatings:
    """Ratings the marketplace has reported into ecomflow's order_ratings table."""

    def order_rating(self, session: Session, *, order_id: str) -> int | None:
        row = session.get(OrderRating, order_id)
        return None if row is None else row.rating


def report_rating(session: Session, *, order_id: str, rating: int, actor: str = SYSTEM_ACTOR) -> None:
    """Record a rating the marketplace reported for an order."""
    if not 1 <= rating <= 5:
        raise ValueError("rating must be between 1 and 5")
    row = session.get(OrderRating, order_id)
    if row is None:
        session.add(OrderRating(order_id=order_id, rating=rating))
    else:
        row.rating = rating
    record_event(session, type="order.rated", actor=actor, data={"order_id": order_id, "rating": rating})
