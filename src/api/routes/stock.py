"""The stock ledger: stock of a SKU per location, its movements, and manual adjustments with a reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ecomflow.api.catalog_schemas import AdjustIn, MovementOut, MovementPage, StockAtLocation, StockOut
from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.engine.access import check_may_edit_catalog
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.shop import stock

router = APIRouter(prefix="/stock", tags=["stock"], responses=error_responses(401, 404, 413, 422))
MAX_LIMIT = 200


def _stock(session, sku: str) -> StockOut:
    rows = [StockAtLocation(**row) for row in stock.stock_of(session, sku)]
    return StockOut(
        sku=sku,
        locations=rows,
        on_hand=sum(r.on_hand for r in rows),
        available=sum(r.available for r in rows),
    )


@router.get("/{sku}", response_model=StockOut)
def get_stock(sku: str, user: CurrentUser) -> StockOut:
    """Return a SKU's on-hand, reserved and available stock at each location (summed from its movements)."""
    with read_scope() as session:
        return _stock(session, sku)


@router.get("/{sku}/movements", response_model=MovementPage)
def get_movements(
    sku: str,
    user: CurrentUser,
    after: Annotated[int | None, Query(ge=0, description="the next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> MovementPage:
    """Return a SKU's movements, oldest first, keyset-paged."""
    with read_scope() as session:
        rows = stock.movements_of(session, sku, after=after, limit=limit + 1)
        items = [MovementOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return MovementPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.post("/{sku}/adjustments", response_model=StockOut, responses=error_responses(403, 409))
def adjust(sku: str, body: AdjustIn, user: CurrentUser) -> StockOut:
    """Adjust the on-hand count with a reason (product role and managers), once per business key; never negative."""
    check_may_edit_catalog(user)
    with session_scope() as session:
        stock.move(
            session,
            kind="adjust",
            sku=sku,
            location=body.location,
            quantity=body.quantity,
            business_key=body.business_key,
            actor=user.name,
            reason=body.reason,
        )
        return _stock(session, sku)
