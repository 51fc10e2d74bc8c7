"""SKUs and the one stock that the shop and the stores share."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Sku, StockReservation
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import SYSTEM_ACTOR


def upsert_sku(
    session: Session,
    *,
    sku: str,
    name: str,
    online_price: Decimal,
    offline_price: Decimal,
    stock: int,
    category: str = "normal",
    price_policy: str = "flexible",
) -> Sku:
    """Create or update a SKU."""
    row = session.get(Sku, sku)
    if row is None:
        row = Sku(sku=sku)
        session.add(row)
    row.name, row.category, row.price_policy = name, category, price_policy
    row.online_price, row.offline_price, row.stock, row.updated_at = online_price, offline_price, stock, utcnow()
    record_event(session, type="sku.saved", actor=SYSTEM_ACTOR, data={"sku": sku, "stock": stock})
    return row


def get_skus(session: Session, skus: list[str]) -> dict[str, Sku]:
    """Return the known SKUs among the given codes."""
    return {row.sku: row for row in session.scalars(select(Sku).where(Sku.sku.in_(skus)))}


def merge_lines(lines: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return one (sku, quantity) line per SKU, adding up repeats, in first-seen order."""
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        merged[sku] = merged.get(sku, 0) + int(quantity)
    return list(merged.items())


def _reserved_lines(session: Session, *, key: str) -> list[StockReservation]:
    return list(
        session.scalars(
            select(StockReservation).where(StockReservation.order_key == key).order_by(StockReservation.sku)
        )
    )


def reserve_stock(
    session: Session, *, key: str, instance_id: str, lines: list[tuple[str, int]], fulfilment: str
) -> dict[str, object]:
    """Take stock for every line at once, exactly once per key; report shortages instead of going negative."""
    done = _reserved_lines(session, key=key)
    if done:
        return {"reserved": True, "lines": [{"sku": r.sku, "quantity": r.quantity} for r in done], "short": []}
    lines = merge_lines(lines)
    stock = get_skus(session, [sku for sku, _ in lines])
    short = [
        {"sku": sku, "wanted": qty, "available": stock[sku].stock if sku in stock else 0}
        for sku, qty in lines
        if sku not in stock or stock[sku].stock < qty
    ]
    if short:
        return {"reserved": False, "lines": [], "short": short}
    try:
        with session.begin_nested():
            for sku, qty in lines:
                # Guarded decrement: a concurrent order cannot push the stock below zero.
                moved = session.execute(
                    update(Sku)
                    .where(Sku.sku == sku, Sku.stock >= qty)
                    .values(stock=Sku.stock - qty)
                    .execution_options(synchronize_session=False)
                )
                if moved.rowcount != 1:
                    raise _StockMoved(sku)
                session.add(
                    StockReservation(
                        key=f"{key}:{sku}",
                        order_key=key,
                        instance_id=instance_id,
                        sku=sku,
                        quantity=qty,
                        fulfilment=fulfilment,
                    )
                )
            session.flush()
    except (IntegrityError, _StockMoved):
        # Another replay reserved first, or the stock moved meanwhile: answer from what is stored now.
        done = _reserved_lines(session, key=key)
        if done:
            return {"reserved": True, "lines": [{"sku": r.sku, "quantity": r.quantity} for r in done], "short": []}
        stock = get_skus(session, [sku for sku, _ in lines])
        short = [
            {"sku": sku, "wanted": qty, "available": stock[sku].stock if sku in stock else 0} for sku, qty in lines
        ]
        return {"reserved": False, "lines": [], "short": short}
    record_event(
        session,
        type="stock.reserved",
        actor=SYSTEM_ACTOR,
        instance_id=instance_id,
        data={"lines": [{"sku": s, "quantity": q} for s, q in lines], "fulfilment": fulfilment},
    )
    return {"reserved": True, "lines": [{"sku": s, "quantity": q} for s, q in lines], "short": []}


def release_stock(session: Session, *, key: str, instance_id: str) -> list[dict[str, object]]:
    """Put a reservation's goods back into the shared stock, exactly once; return what was put back."""
    released = []
    for line in _reserved_lines(session, key=key):
        # Compare-and-set on released_at: a replay finds the line released and skips it.
        moved = session.execute(
            update(StockReservation)
            .where(StockReservation.key == line.key, StockReservation.released_at.is_(None))
            .values(released_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            continue
        session.execute(
            update(Sku)
            .where(Sku.sku == line.sku)
            .values(stock=Sku.stock + line.quantity)
            .execution_options(synchronize_session=False)
        )
        released.append({"sku": line.sku, "quantity": line.quantity})
    if released:
        record_event(
            session, type="stock.released", actor=SYSTEM_ACTOR, instance_id=instance_id, data={"lines": released}
        )
    return released


class _StockMoved(Exception):
    """The stock of a SKU fell below the line's quantity between the check and the decrement."""
