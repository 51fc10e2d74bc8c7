"""The platform-neutral records every import path produces: an export file's row and a pushed event alike.

A mapping file turns a platform's own columns (订单编号, 退款状态, …) into these; everything after reads only these.
Amounts are Decimal; times are aware datetimes (the exports' local times are Asia/Shanghai).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Platform = Literal["tmall", "jd"]
PLATFORMS: tuple[str, ...] = ("tmall", "jd")
Kind = Literal["orders", "refunds", "reviews", "traffic", "ads"]
KINDS: tuple[str, ...] = ("orders", "refunds", "reviews", "traffic", "ads")
# Ad channels: 直通车 (keyword ads, now 万相台's keyword scene) and 钻展 (display ads, now 引力魔方).
AD_SOURCES: tuple[str, ...] = ("ztc", "zz")

# Canonical order statuses; each mapping file maps the platform's wording onto these.
ORDER_STATUSES = ("awaiting_payment", "paid", "shipped", "completed", "cancelled")
# Canonical refund kinds: 仅退款, 退货退款, 换货.
REFUND_KINDS = ("refund_only", "return_refund", "exchange")
# Canonical refund statuses: asked, awaiting the buyer's parcel, parcel sent back, money returned, refused, withdrawn.
REFUND_STATUSES = ("requested", "awaiting_return", "returned", "refunded", "rejected", "cancelled")


@dataclass(frozen=True)
class OrderLineRecord:
    """One line of an order: the merchant code (商家编码) is our SKU; it may be missing on the platform."""

    sku: str | None
    title: str
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class OrderRecord:
    """An order as the platform reports it."""

    platform: str
    order_no: str
    status: str
    platform_status: str
    paid_amount: Decimal
    ordered_at: datetime
    paid_at: datetime | None = None
    total_amount: Decimal | None = None
    postage: Decimal | None = None
    shop: str | None = None
    buyer_nick: str | None = None
    receiver_name: str | None = None
    receiver_phone: str | None = None
    address: str | None = None
    buyer_message: str | None = None
    seller_note: str | None = None
    address_changed: bool = False
    risk_flag: str | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    location: str | None = None
    lines: tuple[OrderLineRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RefundRecord:
    """A refund request (退款) as the platform reports it."""

    platform: str
    refund_no: str
    order_no: str
    kind: str
    status: str
    platform_status: str
    amount: Decimal
    requested_at: datetime
    paid_amount: Decimal | None = None
    sku: str | None = None
    title: str | None = None
    reason: str | None = None
    buyer_nick: str | None = None
    completed_at: datetime | None = None
    return_carrier: str | None = None
    return_tracking_no: str | None = None


@dataclass(frozen=True)
class ReviewRecord:
    """A buyer's review (评价): rating 1–5 (好评 5, 中评 3, 差评 1 where the platform gives a label)."""

    platform: str
    review_id: str
    order_no: str
    rating: int
    reviewed_at: datetime
    rating_label: str | None = None
    sku: str | None = None
    title: str | None = None
    content: str | None = None
    buyer_nick: str | None = None


@dataclass(frozen=True)
class TrafficRecord:
    """One day of 生意参谋 traffic: the shop's (no item) or one item's (商品ID); `row_key` is its identity."""

    platform: str
    row_key: str
    day: date
    visitors: int
    paid_buyers: int
    page_views: int | None = None
    paid_amount: Decimal | None = None
    store: str | None = None
    item_id: str | None = None
    sku: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class AdRecord:
    """One day of one ad plan (or one creative of it) in a 直通车/钻展 report; `row_key` is its identity."""

    platform: str
    row_key: str
    source: str
    day: date
    plan: str
    impressions: int
    clicks: int
    spend: Decimal
    gmv: Decimal
    store: str | None = None
    creative_id: str | None = None
    creative: str | None = None


def traffic_key(*, day: date, store: str | None, item_id: str | None) -> str:
    """The identity of a traffic row: the day, the store and the item (empty for the shop's own row)."""
    return f"{day.isoformat()}|{store or ''}|{item_id or ''}"


def ad_key(*, source: str, day: date, store: str | None, plan: str, creative_id: str | None) -> str:
    """The identity of an ad row: channel, day, store, plan and creative (empty for a plan's own row)."""
    return f"{source}|{day.isoformat()}|{store or ''}|{plan}|{creative_id or ''}"
