"""A generated set of platform orders and refunds, written straight to the tables, and its figures by hand.

The hand computation works on the generated objects, never on the database, with Decimal and the
zoneinfo conversion (not the SQL's fixed +8 h shift), so the two paths can disagree if either is wrong.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from ecomflow.engine.db.models import Product, Variant
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, PlatformRefund
from ecomflow.engine.db.sessions import session_scope

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
PRODUCTS = {"P-TEA": ("TEA-100", "TEA-250"), "P-CUP": ("CUP-S", "CUP-L"), "P-POT": ("POT-1",)}


@dataclass
class Line:
    sku: str | None
    price: Decimal
    quantity: int


@dataclass
class Refund:
    refund_no: str
    amount: Decimal
    status: str
    completed_at: datetime | None
    sku: str | None


@dataclass
class Order:
    platform: str
    order_no: str
    shop: str | None
    buyer: str | None
    status: str
    paid_amount: Decimal
    paid_at: datetime | None
    lines: list[Line] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


def shanghai(text: str) -> datetime:
    """Return a Shanghai wall-clock time as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def local_date(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def generate(seed: int, *, first: date, days: int, orders: int) -> list[Order]:
    """Return random orders over the days: multi-line, unknown SKUs, cancelled, unpaid, partial and later refunds."""
    rng = random.Random(seed)
    skus = [sku for variants in PRODUCTS.values() for sku in variants]
    made = []
    for n in range(orders):
        day = first + timedelta(days=rng.randrange(days))
        moment = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI) + timedelta(seconds=rng.randrange(86400))
        lines = [
            Line(
                sku=rng.choice([*skus, "UNKNOWN-SKU"]) if rng.random() > 0.05 else None,
                price=Decimal(rng.randrange(100, 50000)) / 100,
                quantity=rng.randrange(1, 4),
            )
            for _ in range(rng.choice((0, 1, 1, 2, 3)))
        ]
        value = sum((line.price * line.quantity for line in lines), Decimal(0))
        # Paid amount after a random discount, plus postage; without lines a bare amount.
        paid = (value * Decimal(rng.randrange(80, 101)) / 100 + Decimal(rng.choice((0, 0, 8, 12)))).quantize(CENT)
        paid = paid if lines else Decimal(rng.randrange(100, 20000)) / 100
        status = rng.choice(("paid", "shipped", "completed", "completed", "cancelled", "awaiting_payment"))
        order = Order(
            platform=rng.choice(("taobao", "jd")),
            order_no=f"O{seed}-{n:05d}",
            shop=rng.choice(("旗舰店", "专营店", None)),
            buyer=rng.choice([f"b{i}**" for i in range(12)] + [None]),
            status=status,
            paid_amount=paid,
            paid_at=None if status == "awaiting_payment" else moment.astimezone(UTC),
            lines=lines,
        )
        for r in range(rng.choice((0, 0, 0, 1, 2)) if order.paid_at else 0):
            refund_status = rng.choice(("refunded", "refunded", "requested", "rejected"))
            later = order.paid_at + timedelta(hours=rng.randrange(1, 96))
            order.refunds.append(
                Refund(
                    refund_no=f"R{order.order_no}-{r}",
                    # Partial refunds: a share of the paid amount.
                    amount=(paid * Decimal(rng.randrange(10, 101)) / 100 / 2).quantize(CENT),
                    status=refund_status,
                    completed_at=later if refund_status in ("refunded", "rejected") else None,
                    sku=rng.choice(lines).sku if lines and rng.random() > 0.3 else None,
                )
            )
        made.append(order)
    return made


def insert(orders: list[Order]) -> dict[str, int]:
    """Write the catalogue and the orders; return each product code's id."""
    with session_scope() as session:
        ids = {}
        for code, variants in PRODUCTS.items():
            product = Product(code=code, title=f"{code} 标题", category="tea", brand="b")
            session.add(product)
            session.flush()
            ids[code] = product.id
            for sku in variants:
                session.add(Variant(code=sku, product_id=product.id, attributes={}, list_price=Decimal("1.00")))
        for order in orders:
            row = PlatformOrder(
                platform=order.platform,
                order_no=order.order_no,
                shop=order.shop,
                buyer_nick=order.buyer,
                status=order.status,
                platform_status=order.status,
                paid_amount=order.paid_amount,
                ordered_at=(order.paid_at or shanghai("2026-01-01T00:00:00")) - timedelta(minutes=5),
                paid_at=order.paid_at,
                content_hash=order.order_no,
            )
            session.add(row)
            session.flush()
            for number, line in enumerate(order.lines, 1):
                session.add(
                    PlatformOrderLine(
                        order_id=row.id,
                        line_no=number,
                        sku=line.sku,
                        title="t",
                        quantity=line.quantity,
                        price=line.price,
                    )
                )
            for refund in order.refunds:
                session.add(
                    PlatformRefund(
                        platform=order.platform,
                        refund_no=refund.refund_no,
                        order_no=order.order_no,
                        sku=refund.sku,
                        kind="refund_only",
                        status=refund.status,
                        platform_status=refund.status,
                        amount=refund.amount,
                        requested_at=order.paid_at,
                        completed_at=refund.completed_at,
                        content_hash=refund.refund_no,
                    )
                )
    return ids


# ── by hand ─────────────────────────────────────────────────────────────────────────
@dataclass
class Hand:
    gmv: Decimal = Decimal("0.00")
    orders: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)
    refund_amount: Decimal = Decimal("0.00")
    refunds: int = 0


def counts(order: Order, first: date, last: date) -> bool:
    """Tell whether the order's payment counts: paid in the days, not cancelled unless refunded."""
    if order.paid_at is None or not first <= local_date(order.paid_at) <= last:
        return False
    return order.status != "cancelled" or any(r.status == "refunded" for r in order.refunds)


def product_of(sku: str | None) -> str | None:
    return next((code for code, variants in PRODUCTS.items() if sku in variants), None)


def by_hand(orders: list[Order], *, first: date, last: date, by: str) -> dict[str | None, Hand]:
    """Return each group's figures, computed the slow way."""
    groups: dict[str | None, Hand] = defaultdict(Hand)

    def add_order(key: str | None, order: Order, amount: Decimal) -> None:
        groups[key].gmv += amount
        groups[key].orders.add(order.order_no)
        if order.buyer is not None:
            groups[key].buyers.add(order.buyer)

    for order in orders:
        if counts(order, first, last):
            value = sum((line.price * line.quantity for line in order.lines), Decimal(0))
            if by == "product" and value > 0:
                for line in order.lines:
                    share = (order.paid_amount * line.price * line.quantity / value).quantize(CENT, ROUND_HALF_UP)
                    add_order(product_of(line.sku), order, share)
            else:
                key = {
                    "day": local_date(order.paid_at).isoformat() if order.paid_at else None,
                    "channel": order.platform,
                    "store": order.shop,
                    "product": None,
                    "total": "total",
                }[by]
                add_order(key, order, order.paid_amount)
        for refund in order.refunds:
            if refund.status != "refunded" or not first <= local_date(refund.completed_at) <= last:
                continue
            key = {
                "day": local_date(refund.completed_at).isoformat(),
                "channel": order.platform,
                "store": order.shop,
                "product": product_of(refund.sku),
                "total": "total",
            }[by]
            groups[key].refund_amount += refund.amount
            groups[key].refunds += 1
    return groups
