"""Paid platform orders for tests, imported through ingest.apply (which hands each change to the waves)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.platform_models import ImportRun, PlatformOrder, PlatformOrderEvent, PlatformOrderLine, Wave
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake.ingest import apply
from ecomflow.engine.intake.records import OrderLineRecord, OrderRecord
from ecomflow.engine.shop.catalog import seed_sku
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE

# A session's own SKUs: the sample catalogue (loaded by the demo on the same stack) has a TEE-WHT-M of its own.
_SKU_SUFFIX = uuid.uuid4().hex[:6].upper()
TEE, CAP = f"TEE-{_SKU_SUFFIX}", f"CAP-{_SKU_SUFFIX}"
# Order numbers sort in the order they were made; the prefix keeps two test sessions' numbers apart.
_PREFIX = f"{uuid.uuid4().int % 10**9:09d}"
_made = itertools.count(1)
# What each order was last imported as, so a test can import it again with another status.
_records: dict[tuple[str, str], OrderRecord] = {}


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
    """Import a paid order through ingest.apply, as a file or the ERP feed would; return its order number."""
    record = _order_record(order_no, platform=platform, lines=lines, status=status, **fields)
    _import(record)
    return record.order_no


def add_orders(count: int) -> list[str]:
    """Import `count` paid orders in one batch of one import, as a file's batch does; return their numbers."""
    records = [_order_record(None) for _ in range(count)]
    _import(*records)
    return [record.order_no for record in records]


def _order_record(
    order_no: str | None,
    *,
    platform: str = "tmall",
    lines: list[tuple[str | None, int]] | None = None,
    status: str = "paid",
    **fields: Any,
) -> OrderRecord:
    return OrderRecord(
        platform=platform,
        order_no=order_no or f"{_PREFIX}{next(_made):06d}",
        status=status,
        platform_status="买家已付款，等待卖家发货" if status == "paid" else status,
        paid_amount=Decimal("288.00"),
        ordered_at=utcnow(),
        paid_at=utcnow(),
        receiver_name="张*",
        receiver_phone="13812345678",
        address="上海市 浦东新区 世纪大道100号",
        lines=tuple(
            OrderLineRecord(sku=sku, title=sku or "无编码商品", quantity=qty, price=Decimal("99"))
            for sku, qty in (lines or [(TEE, 1), (CAP, 2)])
        ),
        **fields,
    )


def set_status(order_no: str, status: str, *, platform: str = "tmall") -> None:
    """Import the order again with another status, as the next export or push would."""
    wording = {"cancelled": "交易关闭", "shipped": "卖家已发货，等待买家确认"}.get(status, status)
    record = replace(
        _records.get((platform, order_no)) or _stored(platform, order_no), status=status, platform_status=wording
    )
    _import(record)


def _stored(platform: str, order_no: str) -> OrderRecord:
    """Return an order made outside these helpers (an inquiry's) as the platform would export it."""
    with session_scope() as session:
        order = session.scalar(
            select(PlatformOrder).where(PlatformOrder.platform == platform, PlatformOrder.order_no == order_no)
        )
        lines = session.scalars(
            select(PlatformOrderLine).where(PlatformOrderLine.order_id == order.id).order_by(PlatformOrderLine.line_no)
        )
        return OrderRecord(
            platform=platform,
            order_no=order_no,
            status=order.status,
            platform_status=order.platform_status,
            paid_amount=order.paid_amount,
            ordered_at=order.ordered_at,
            paid_at=order.paid_at,
            buyer_nick=order.buyer_nick,
            lines=tuple(OrderLineRecord(sku=x.sku, title=x.title, quantity=x.quantity, price=x.price) for x in lines),
        )


def _import(*records: OrderRecord) -> None:
    """Import the records in one ingest.apply call (one batch), and remember them for set_status."""
    with session_scope() as session:
        run = ImportRun(kind="orders", platform=records[0].platform, source="push:tests", actor="import:test")
        apply(session, "orders", list(records), actor="import:test", run=run)
    for record in records:
        _records[(record.platform, record.order_no)] = record


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
