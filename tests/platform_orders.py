"""Paid platform orders for tests: rows as an import would leave them, joined to waves through order_changed."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderEvent, PlatformOrderLine, Wave
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.waves import order_changed
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE

TEE, CAP = "TEE-WHT-M", "CAP-BLK"
# Order numbers sort in the order they were made; the prefix keeps two test sessions' numbers apart.
_PREFIX = f"{uuid.uuid4().int % 10**9:09d}"
_made = itertools.count(1)


def seed_stock(tee: int = 100, cap: int = 100, location: str = ONLINE_WAREHOUSE) -> None:
    """Put the two SKUs the orders buy into the catalogue with stock at the location."""
    with session_scope() as session:
        seed_sku(session, sku=TEE, title="纯棉圆领T恤 白色 M", list_price="199", stock=tee, location=location)
        seed_sku(session, sku=CAP, title="棒球帽 黑色", list_price="89", stock=cap, location=location)


def add_order(
    order_no: str | None = None,
    *,
    platform: str = "tmall",
    lines: list[tuple[str | None, int]] | None = None,
    status: str = "paid",
    **fields: Any,
) -> str:
    """Insert an order as an import would and tell the waves (order_changed); return its order number."""
    order_no = order_no or f"{_PREFIX}{next(_made):06d}"
    with session_scope() as session:
        order = PlatformOrder(
            platform=platform,
            order_no=order_no,
            status=status,
            platform_status="买家已付款，等待卖家发货" if status == "paid" else status,
            paid_amount=Decimal("288.00"),
            ordered_at=utcnow(),
            paid_at=utcnow(),
            receiver_name="张*",
            receiver_phone="13812345678",
            address="上海市 浦东新区 世纪大道100号",
            content_hash=uuid.uuid4().hex,
            **fields,
        )
        session.add(order)
        session.flush()
        for no, (sku, qty) in enumerate(lines or [(TEE, 1), (CAP, 2)], start=1):
            session.add(
                PlatformOrderLine(
                    order_id=order.id, line_no=no, sku=sku, title=sku or "无编码商品", quantity=qty, price=Decimal("99")
                )
            )
        session.flush()
        order_changed(session, order, before=None, actor="import:test")
    return order_no


def set_status(order_no: str, status: str, *, platform: str = "tmall") -> None:
    """Change an order's platform status as a re-import would, and tell the waves."""
    with session_scope() as session:
        order = session.scalar(
            select(PlatformOrder).where(PlatformOrder.platform == platform, PlatformOrder.order_no == order_no)
        )
        before, order.status, order.platform_status = (
            order.status,
            status,
            "交易关闭" if status == "cancelled" else status,
        )
        order_changed(session, order, before=before, actor="import:test")


def order_row(order_no: str, *, platform: str = "tmall") -> dict[str, Any]:
    """Return an order's fulfilment facts as plain data."""
    with session_scope() as session:
        order = session.scalar(
            select(PlatformOrder).where(PlatformOrder.platform == platform, PlatformOrder.order_no == order_no)
        )
        return {
            "wave_id": order.wave_id,
            "fulfilment_state": order.fulfilment_state,
            "case_instance_id": order.case_instance_id,
            "tracking_no": order.tracking_no,
            "history": [
                event.type
                for event in session.scalars(
                    select(PlatformOrderEvent)
                    .where(PlatformOrderEvent.order_id == order.id)
                    .order_by(PlatformOrderEvent.id)
                )
            ],
        }


def waves() -> list[dict[str, Any]]:
    """Return every wave as plain data, oldest first."""
    with session_scope() as session:
        return [
            {
                "id": w.id,
                "location": w.location,
                "state": w.state,
                "orders": w.order_count,
                "instance_id": w.instance_id,
            }
            for w in session.scalars(select(Wave).order_by(Wave.id))
        ]
