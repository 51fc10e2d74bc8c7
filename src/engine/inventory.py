"""SKUs and the one stock that the shop and the stores share."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.audit import record_event
from engine.clock import utcnow
from engine.models import Sku, StockReservation
from engine.principals import SYSTEM_ACTOR


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


def reserve_stock(
    session: Session, *, key: str, instance_id: str, lines: list[tuple[str, int]], fulfilment: str
) -> dict[str, object]:
    """Take stock for every line at once, exactly once per key; report shortages instead of going negative."""
    done = list(session.scalars(select(StockReservation).where(StockReservation.key.like(f"{key}:%"))))
    if done:
        return {"reserved": True, "lines": [{"sku": r.sku, "quantity": r.quantity} for r in done], "short": []}
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
                    update(Sku).where(Sku.sku == sku, Sku.stock >= qty).values(stock=Sku.stock - qty).execution_options(synchronize_session=False)
                )
                if moved.rowcount != 1:
                    raise IntegrityError("stock changed meanwhile", params=None, orig=Exception(sku))
                session.add(StockReservation(key=f"{key}:{sku}", instance_id=instance_id, sku=sku, quantity=qty, fulfilment=fulfilment))
            session.flush()
    except IntegrityError:
        return reserve_stock(session, key=key, instance_id=instance_id, lines=lines, fulfilment=fulfilment)
    record_event(
        session, type="stock.reserved", actor=SYSTEM_ACTOR, instance_id=instance_id,
        data={"lines": [{"sku": s, "quantity": q} for s, q in lines], "fulfilment": fulfilment},
    )
    return {"reserved": True, "lines": [{"sku": s, "quantity": q} for s, q in lines], "short": []}
