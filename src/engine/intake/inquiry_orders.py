"""An order placed after a pre-sales inquiry (presales_order, fulfilment ship) joins the waves like any paid order.

The inquiry already reserved its stock (under the inquiry's keys); the wave's 审单 keeps that reservation
instead of taking a second one, and 发货 or a cancellation settles it.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine
from ecomflow.engine.db.sessions import insert_unless_exists
from ecomflow.engine.intake.waves import inquiry_reservation_keys, order_changed
from ecomflow.engine.shop.catalog import priced_variants
from ecomflow.engine.shop.stock import settle_order

# An inquiry's order is paid when customer service records it (the buyer paid in the chat's checkout).
PAID_BY_INQUIRY = "询单下单 (已付款)"


def join_from_inquiry(
    session: Session,
    *,
    instance_id: str,
    platform: str,
    order_no: str,
    customer: str,
    lines: list[dict[str, Any]],
    actor: str,
) -> PlatformOrder:
    """Record the inquiry's order as a paid platform order and put it in its wave, once per inquiry.

    If an import brought the order first (it is already being fulfilled with its own reservation), the
    inquiry's reservation is released, so the goods are held once.
    """
    order = _recorded(session, platform=platform, order_no=order_no)
    if order is None:
        order = _record(
            session, instance_id=instance_id, platform=platform, order_no=order_no, customer=customer, lines=lines
        )
        if order is not None:
            order_changed(session, order, before=None, actor=actor)
            return order
        # Another inquiry or an import recorded the same order since the read above: join that one.
        order = _recorded(session, platform=platform, order_no=order_no)
        if order is None:
            raise LookupError(f"order {platform}/{order_no} was refused as a duplicate but cannot be read")
    if order.inquiry_instance_id is None and order.fulfilment_state is not None:
        for key in inquiry_reservation_keys(instance_id):
            settle_order(session, key=key, kind="release", actor=actor, instance_id=instance_id)
    if order.inquiry_instance_id is None:
        order.inquiry_instance_id = instance_id
    return order


def _recorded(session: Session, *, platform: str, order_no: str) -> PlatformOrder | None:
    return session.scalar(
        select(PlatformOrder).where(PlatformOrder.platform == platform, PlatformOrder.order_no == order_no)
    )


def _record(
    session: Session, *, instance_id: str, platform: str, order_no: str, customer: str, lines: list[dict[str, Any]]
) -> PlatformOrder | None:
    """Insert the inquiry's order and its lines; None if the platform's order number is already taken."""
    prices = priced_variants(session, [line["sku"] for line in lines])
    amount = sum(
        (prices[line["sku"]].list_price * int(line["quantity"]) for line in lines if line["sku"] in prices), Decimal(0)
    )
    now = utcnow()
    digest = hashlib.sha256(json.dumps([platform, order_no, lines], sort_keys=True).encode()).hexdigest()
    order = PlatformOrder(
        platform=platform,
        order_no=order_no,
        buyer_nick=customer,
        status="paid",
        platform_status=PAID_BY_INQUIRY,
        paid_amount=amount,
        ordered_at=now,
        paid_at=now,
        inquiry_instance_id=instance_id,
        content_hash=digest,
    )
    if not insert_unless_exists(session, order):
        return None
    for line_no, line in enumerate(lines, start=1):
        known = prices.get(line["sku"])
        session.add(
            PlatformOrderLine(
                order_id=order.id,
                line_no=line_no,
                sku=line["sku"],
                title=known.title if known else line["sku"],
                quantity=int(line["quantity"]),
                price=known.list_price if known else Decimal(0),
            )
        )
    session.flush()
    return order
