"""Sales facts from the imported platform orders and refunds, by day, product, channel or store.

Definitions (a day is a local day of the team's time zone, Asia/Shanghai; stored times are naive UTC):
- GMV (成交金额): the sum of paid_amount (实付, postage included) of the orders paid that day (paid_at).
  A cancelled order is left out — except one that was paid and then closed by a refund (it has a
  refund with status refunded): platforms count GMV at payment and show refunds apart, and so do we.
- Paid orders: how many such orders; buyers: distinct buyer_nick among them (masked nicks as given).
- AOV (客单价): GMV / paid orders, to the cent, half up.
- Refund amount: the sum of refunds with status refunded, on the day they completed (completed_at),
  whatever day their order was paid; refund rate: refund amount / GMV of the same row, to 0.0001.
- By product: an order's paid amount is shared among its lines by line value (price × quantity),
  each share rounded to the cent half up, so product rows may differ from the total by a few cents;
  a line's product is its SKU's variant's product; unknown SKUs, orders without lines and refunds
  without a SKU fall in the row without a product (key None). A product's paid orders and buyers
  count the orders holding it. By channel: the platform; by store: the shop (a refund's is its order's).
Money is summed in whole cents in SQL, so SQLite (floats) and PostgreSQL (numeric) agree to the cent.
- Visitors and conversion (paying buyers / visitors, both as 生意参谋 reports them) come from the imported
  traffic days, see traffic_figures.py; None where no traffic was imported for the row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, case, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from ecomflow.engine.db.local_day import fixed_offset_minutes, local_day
from ecomflow.engine.db.models import Product, Variant
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, PlatformRefund
from ecomflow.engine.reports.traffic_figures import conversion, traffic_by

CENT = Decimal("0.01")
RATE = Decimal("0.0001")
MAX_DAYS = 366


class SalesBy(StrEnum):
    DAY = "day"
    PRODUCT = "product"
    CHANNEL = "channel"
    STORE = "store"


@dataclass(frozen=True)
class SalesRow:
    """One day's, product's, channel's or store's figures (key None: no product or store known)."""

    key: str | None
    label: str | None
    gmv: Decimal
    paid_orders: int
    buyers: int
    refund_amount: Decimal
    refunds: int
    visitors: int | None = None
    # 支付买家数 as 生意参谋 reports it (not `buyers`, which counts the imported orders' nicks).
    paying_buyers: int | None = None

    @property
    def conversion(self) -> Decimal | None:
        """Return paying buyers / visitors (支付转化率), to 0.0001 (None without traffic)."""
        return conversion(self.visitors, self.paying_buyers)

    @property
    def aov(self) -> Decimal | None:
        """Return GMV per paid order, to the cent (None without orders)."""
        return None if not self.paid_orders else (self.gmv / self.paid_orders).quantize(CENT, ROUND_HALF_UP)

    @property
    def refund_rate(self) -> Decimal | None:
        """Return refund amount / GMV, to 0.0001 (None without GMV)."""
        return None if not self.gmv else (self.refund_amount / self.gmv).quantize(RATE, ROUND_HALF_UP)

    def as_dict(self) -> dict[str, Any]:
        """Return the row with money and rates as strings (exact in JSON)."""
        return {
            "key": self.key,
            "label": self.label,
            "gmv": str(self.gmv),
            "paid_orders": self.paid_orders,
            "buyers": self.buyers,
            "aov": None if self.aov is None else str(self.aov),
            "refund_amount": str(self.refund_amount),
            "refunds": self.refunds,
            "refund_rate": None if self.refund_rate is None else str(self.refund_rate),
            "visitors": self.visitors,
            "paying_buyers": self.paying_buyers,
            "conversion": None if self.conversion is None else str(self.conversion),
        }


@dataclass(frozen=True)
class SalesReport:
    """Sales facts over the local days [first, last], one row per group and the total."""

    first: date
    last: date
    timezone: str
    by: SalesBy
    rows: list[SalesRow]
    total: SalesRow


def day_range(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC of the local days first..last."""
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    return start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _cents(column: Any) -> Any:
    return cast(func.round(column * 100), BigInteger)


def _money(cents: int | None) -> Decimal:
    return (Decimal(int(cents or 0)) / 100).quantize(CENT)


def counted_orders(start: datetime, end: datetime) -> Any:
    """The orders whose payment counts in [start, end): paid then, not cancelled unless closed by a refund."""
    closed_by_refund = exists().where(
        PlatformRefund.platform == PlatformOrder.platform,
        PlatformRefund.order_no == PlatformOrder.order_no,
        PlatformRefund.status == "refunded",
    )
    return and_(
        PlatformOrder.paid_at >= start,
        PlatformOrder.paid_at < end,
        or_(PlatformOrder.status != "cancelled", closed_by_refund),
    )


def _refunded(start: datetime, end: datetime) -> Any:
    return and_(
        PlatformRefund.status == "refunded", PlatformRefund.completed_at >= start, PlatformRefund.completed_at < end
    )


_Figures = dict[Any, list[int]]  # key -> [gmv cents, orders, buyers, refund cents, refunds]


def _order_figures(session: Session, key: Any, counted: Any) -> _Figures:
    query = select(
        key,
        func.sum(_cents(PlatformOrder.paid_amount)),
        func.count(PlatformOrder.id),
        func.count(func.distinct(PlatformOrder.buyer_nick)),
    ).where(counted)
    return {k: [int(gmv or 0), orders, buyers, 0, 0] for k, gmv, orders, buyers in session.execute(query.group_by(key))}


def _product_order_figures(session: Session, counted: Any) -> _Figures:
    """Share each order's paid cents among its lines by value, half up, in integer SQL arithmetic."""
    line_cents = _cents(PlatformOrderLine.price) * PlatformOrderLine.quantity
    values = (
        # PostgreSQL's sum of bigint is numeric: back to bigint, or the share below divides in fractions.
        select(PlatformOrderLine.order_id, cast(func.sum(line_cents), BigInteger).label("value"))
        .group_by(PlatformOrderLine.order_id)
        .subquery()
    )
    paid = _cents(PlatformOrder.paid_amount)
    # round(a·b / c) half up for non-negative integers is (2ab + c) // 2c; an order without
    # lines of any value has nothing to share by, and all of it goes to no product.
    share = case(
        (values.c.value.is_(None), paid), else_=(2 * paid * line_cents + values.c.value) // (2 * values.c.value)
    )
    query = (
        select(
            Variant.product_id,
            func.sum(share),
            func.count(func.distinct(PlatformOrder.id)),
            func.count(func.distinct(PlatformOrder.buyer_nick)),
        )
        .select_from(PlatformOrder)
        .outerjoin(values, and_(values.c.order_id == PlatformOrder.id, values.c.value > 0))
        .outerjoin(PlatformOrderLine, PlatformOrderLine.order_id == values.c.order_id)
        .outerjoin(Variant, Variant.code == PlatformOrderLine.sku)
        .where(counted)
        .group_by(Variant.product_id)
    )
    return {k: [int(gmv or 0), orders, buyers, 0, 0] for k, gmv, orders, buyers in session.execute(query)}


def _refund_key(by: SalesBy, offset: int) -> tuple[Any, Any]:
    """Return the refund's grouping column and the join it needs (or None)."""
    if by is SalesBy.DAY:
        return local_day(PlatformRefund.completed_at, offset), None
    if by is SalesBy.CHANNEL:
        return PlatformRefund.platform, None
    if by is SalesBy.STORE:
        on = and_(PlatformOrder.platform == PlatformRefund.platform, PlatformOrder.order_no == PlatformRefund.order_no)
        return PlatformOrder.shop, (PlatformOrder, on)
    return Variant.product_id, (Variant, Variant.code == PlatformRefund.sku)


def _add_refunds(session: Session, figures: _Figures, *, by: SalesBy, offset: int, refunded: Any) -> None:
    key, join = _refund_key(by, offset)
    query = (
        select(key, func.sum(_cents(PlatformRefund.amount)), func.count(PlatformRefund.id))
        .select_from(PlatformRefund)
        .where(refunded)
    )
    if join is not None:
        query = query.outerjoin(*join)
    for k, cents, count in session.execute(query.group_by(key)):
        row = figures.setdefault(k, [0, 0, 0, 0, 0])
        row[3] += int(cents or 0)
        row[4] += count


def _labels(session: Session, by: SalesBy, keys: list[Any]) -> dict[Any, str]:
    if by is not SalesBy.PRODUCT:
        return {}
    found = session.execute(select(Product.id, Product.code, Product.title).where(Product.id.in_(keys)))
    return {pid: (code, title) for pid, code, title in found}


def _row(key: str | None, label: str | None, figures: list[int]) -> SalesRow:
    gmv, orders, buyers, refund_cents, refunds = figures
    return SalesRow(
        key=key,
        label=label,
        gmv=_money(gmv),
        paid_orders=orders,
        buyers=buyers,
        refund_amount=_money(refund_cents),
        refunds=refunds,
    )


def _total(session: Session, counted: Any, refunded: Any) -> SalesRow:
    gmv, orders, buyers = session.execute(
        select(
            func.sum(_cents(PlatformOrder.paid_amount)),
            func.count(PlatformOrder.id),
            func.count(func.distinct(PlatformOrder.buyer_nick)),
        ).where(counted)
    ).one()
    cents, refunds = session.execute(
        select(func.sum(_cents(PlatformRefund.amount)), func.count(PlatformRefund.id)).where(refunded)
    ).one()
    return _row("total", None, [int(gmv or 0), orders, buyers, int(cents or 0), refunds])


def _ordered_rows(session: Session, by: SalesBy, figures: _Figures, first: date, last: date) -> list[SalesRow]:
    if by is SalesBy.DAY:
        days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        # Every day of the range, sold or not, so a chart has no holes.
        return [_row(day, None, figures.get(day, [0, 0, 0, 0, 0])) for day in days]
    if by is SalesBy.PRODUCT:
        labels = _labels(session, by, [k for k in figures if k is not None])
        named = sorted((labels[k][0], labels[k][1], k) for k in figures if k is not None)
        rows = [_row(code, title, figures[k]) for code, title, k in named]
    else:
        rows = [_row(k, k, figures[k]) for k in sorted(k for k in figures if k is not None)]
    return rows + ([_row(None, None, figures[None])] if None in figures else [])


def sales_report(session: Session, *, first: date, last: date, timezone: str, by: SalesBy) -> SalesReport:
    """Compute the sales facts of the local days first..last (inclusive), grouped by day, product, channel or store."""
    by = SalesBy(by)  # callers may pass the plain word ("day") as the API's query does
    if last < first:
        raise ValueError(f"the last day {last} comes before the first {first}")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"a sales report covers at most {MAX_DAYS} days, not {(last - first).days + 1}")
    zone = ZoneInfo(timezone)
    start, end = day_range(first, last, zone)
    offset = fixed_offset_minutes(zone, start, end)
    counted, refunded = counted_orders(start, end), _refunded(start, end)
    if by is SalesBy.PRODUCT:
        figures = _product_order_figures(session, counted)
    else:
        key = {
            SalesBy.DAY: local_day(PlatformOrder.paid_at, offset),
            SalesBy.CHANNEL: PlatformOrder.platform,
            SalesBy.STORE: PlatformOrder.shop,
        }[by]
        figures = _order_figures(session, key, counted)
    _add_refunds(session, figures, by=by, offset=offset, refunded=refunded)
    traffic, traffic_total = traffic_by(session, by=by.value, first=first, last=last)
    if by is not SalesBy.DAY:
        for key in traffic:
            # A group with visitors and no sale is a row too: its conversion is the point.
            figures.setdefault(_figures_key(session, by, key), [0, 0, 0, 0, 0])
    rows = [_with_traffic(row, traffic.get(row.key)) for row in _ordered_rows(session, by, figures, first, last)]
    total = _with_traffic(_total(session, counted, refunded), traffic_total)
    return SalesReport(first=first, last=last, timezone=timezone, by=by, rows=rows, total=total)


def _figures_key(session: Session, by: SalesBy, key: str | None) -> Any:
    """Return the figures' key of a traffic row's key: products are keyed by id there, by code in rows."""
    if by is not SalesBy.PRODUCT or key is None:
        return key
    return session.scalar(select(Product.id).where(Product.code == key))


def _with_traffic(row: SalesRow, traffic: list[int] | None) -> SalesRow:
    if traffic is None:
        return row
    return replace(row, visitors=traffic[0], paying_buyers=traffic[1])
