"""Platform orders: where each stands, in which wave, with its history (managers, customer service, warehouse)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.order_schemas import OrderEventOut, OrderLineOut, OrderOut, WaveRef
from ecomflow.engine.access import check_may_see_platform_orders
from ecomflow.engine.db.platform_models import PlatformOrderEvent, Wave
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.intake.fulfilment import find_order, lines_of

router = APIRouter(prefix="/orders", tags=["orders"], responses=error_responses(401, 403, 404))


@router.get("/{platform}/{order_no}", response_model=OrderOut)
def get_order(platform: str, order_no: str, user: CurrentUser) -> OrderOut:
    """Return an order: its status, lines, where it stands in fulfilment, its wave or own case, and its history."""
    check_may_see_platform_orders(user)
    with read_scope() as session:
        order = find_order(session, platform, order_no)
        wave = session.get(Wave, order.wave_id) if order.wave_id is not None else None
        events = session.scalars(
            select(PlatformOrderEvent).where(PlatformOrderEvent.order_id == order.id).order_by(PlatformOrderEvent.id)
        )
        return OrderOut(
            **{name: getattr(order, name) for name in _ORDER_FIELDS},
            wave=WaveRef(id=wave.id, location=wave.location, state=wave.state, instance_id=wave.instance_id)
            if wave
            else None,
            lines=[
                OrderLineOut.model_validate(line, from_attributes=True)
                for line in lines_of(session, [order.id])[order.id]
            ],
            history=[OrderEventOut.model_validate(event, from_attributes=True) for event in events],
        )


_ORDER_FIELDS = (
    "platform",
    "order_no",
    "shop",
    "status",
    "platform_status",
    "paid_amount",
    "ordered_at",
    "paid_at",
    "location",
    "fulfilment_state",
    "carrier",
    "tracking_no",
    "case_instance_id",
    "inquiry_instance_id",
)
