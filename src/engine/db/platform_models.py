"""Tables of the shop platforms' data: orders, refunds and reviews as imported or pushed, and the waves of orders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Base, BigId, new_id


class Wave(Base):
    """A batch of paid orders (波次) one warehouse location works together; one fulfilment instance per wave."""

    __tablename__ = "waves"
    __table_args__ = (Index("ix_waves_location_state", "location", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    location: Mapped[str] = mapped_column(ForeignKey("locations.code"))
    # open (taking orders), closed (its instance is running), done (every order shipped or gone).
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closes_at: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)


class PlatformOrder(Base):
    """An order as the shop platform reports it (订单报表 / JD order export / an ERP push), and where it stands here."""

    __tablename__ = "platform_orders"
    __table_args__ = (
        UniqueConstraint("platform", "order_no", name="uq_platform_order"),
        Index("ix_platform_orders_paid_at", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    order_no: Mapped[str] = mapped_column(String(64))
    shop: Mapped[str | None] = mapped_column(String(100), default=None)
    # Buyer fields are stored as the platform gives them: masked names and phone numbers stay masked.
    buyer_nick: Mapped[str | None] = mapped_column(String(100), default=None)
    receiver_name: Mapped[str | None] = mapped_column(String(100), default=None)
    receiver_phone: Mapped[str | None] = mapped_column(String(40), default=None)
    address: Mapped[str | None] = mapped_column(Text, default=None)
    # awaiting_payment, paid, shipped, completed, cancelled — the platform's own wording is in platform_status.
    status: Mapped[str] = mapped_column(String(24))
    platform_status: Mapped[str] = mapped_column(String(64))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    postage: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    paid_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    ordered_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    buyer_message: Mapped[str | None] = mapped_column(Text, default=None)
    seller_note: Mapped[str | None] = mapped_column(Text, default=None)
    address_changed: Mapped[bool] = mapped_column(default=False)
    risk_flag: Mapped[str | None] = mapped_column(String(255), default=None)
    carrier: Mapped[str | None] = mapped_column(String(50), default=None)
    tracking_no: Mapped[str | None] = mapped_column(String(64), default=None)
    # The stock location that ships it; the online warehouse unless the export names another.
    location: Mapped[str | None] = mapped_column(String(32), default=None)
    # The presales_order instance whose inquiry led to this order, if any.
    inquiry_instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    wave_id: Mapped[int | None] = mapped_column(ForeignKey("waves.id"), default=None, index=True)
    # Where the order stands in ecomflow's fulfilment (see engine/intake/waves.py); None before it is paid.
    fulfilment_state: Mapped[str | None] = mapped_column(String(24), default=None)
    # The order's own case after it left its wave (a failed check).
    case_instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # A digest of what the platform reported: a re-import with the same digest changes nothing.
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformOrderLine(Base):
    """One line of an order (宝贝报表 row / JD order row): the merchant code (商家编码) is our SKU."""

    __tablename__ = "platform_order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_no", name="uq_platform_order_line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("platform_orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    title: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class PlatformOrderEvent(Base):
    """An order's own history: each status it took on the platform and in ecomflow, with why."""

    __tablename__ = "platform_order_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("platform_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PlatformRefund(Base):
    """A refund request (退款报表 row / ERP push); it starts and moves a returns_exchange instance."""

    __tablename__ = "platform_refunds"
    __table_args__ = (UniqueConstraint("platform", "refund_no", name="uq_platform_refund"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    refund_no: Mapped[str] = mapped_column(String(64))
    order_no: Mapped[str] = mapped_column(String(64), index=True)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    title: Mapped[str | None] = mapped_column(String(255), default=None)
    # refund_only (仅退款), return_refund (退货退款), exchange (换货).
    kind: Mapped[str] = mapped_column(String(16))
    # requested, awaiting_return, returned, refunded, rejected, cancelled — the platform's wording in platform_status.
    status: Mapped[str] = mapped_column(String(24))
    platform_status: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    paid_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    buyer_nick: Mapped[str | None] = mapped_column(String(100), default=None)
    requested_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    return_carrier: Mapped[str | None] = mapped_column(String(50), default=None)
    return_tracking_no: Mapped[str | None] = mapped_column(String(64), default=None)
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformReview(Base):
    """A buyer's review (评价 export / ERP push); a middle or bad one (中差评) starts a follow-up."""

    __tablename__ = "platform_reviews"
    __table_args__ = (UniqueConstraint("platform", "review_id", name="uq_platform_review"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    review_id: Mapped[str] = mapped_column(String(128))
    order_no: Mapped[str] = mapped_column(String(64), index=True)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    title: Mapped[str | None] = mapped_column(String(255), default=None)
    # 1–5; 好评 is 5, 中评 3, 差评 1 where the platform gives a label, not stars.
    rating: Mapped[int] = mapped_column(Integer)
    rating_label: Mapped[str | None] = mapped_column(String(16), default=None)
    content: Mapped[str | None] = mapped_column(Text, default=None)
    buyer_nick: Mapped[str | None] = mapped_column(String(100), default=None)
    reviewed_at: Mapped[datetime] = mapped_column()
    instance_id: Mapped[str | None] = mapped_column(String(36), default=None)
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrafficDay(Base):
    """A day of 生意参谋 traffic: the shop's (item_id NULL) or one item's; row_key is day|store|item."""

    __tablename__ = "traffic_daily"
    __table_args__ = (
        UniqueConstraint("platform", "row_key", name="uq_traffic_daily"),
        Index("ix_traffic_daily_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    row_key: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)
    store: Mapped[str | None] = mapped_column(String(100), default=None)
    item_id: Mapped[str | None] = mapped_column(String(64), default=None)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    title: Mapped[str | None] = mapped_column(String(255), default=None)
    visitors: Mapped[int] = mapped_column(BigInteger)
    page_views: Mapped[int | None] = mapped_column(BigInteger, default=None)
    paid_buyers: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdDay(Base):
    """A day of a 直通车 (ztc) or 钻展 (zz) plan or creative; row_key is source|day|store|plan|creative."""

    __tablename__ = "ad_daily"
    __table_args__ = (
        UniqueConstraint("platform", "row_key", name="uq_ad_daily"),
        Index("ix_ad_daily_day", "day"),
        Index("ix_ad_daily_creative_id", "creative_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    row_key: Mapped[str] = mapped_column(String(400))
    source: Mapped[str] = mapped_column(String(8))
    day: Mapped[date] = mapped_column(Date)
    store: Mapped[str | None] = mapped_column(String(100), default=None)
    plan: Mapped[str] = mapped_column(String(200))
    creative_id: Mapped[str | None] = mapped_column(String(64), default=None)
    creative: Mapped[str | None] = mapped_column(String(255), default=None)
    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    spend: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # 总成交金额: the GMV the platform attributes to the ads (direct + indirect).
    gmv: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    content_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportRun(Base):
    """One import of a file or one pushed batch, and its report: created, updated, unchanged, rejected."""

    __tablename__ = "import_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(16))
    # file:<name> for an upload or a CLI import, push:<source> for the ERP feed.
    source: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    # [{line, reason}] of every rejected row (bounded by the file).
    rejections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class InboundDelivery(Base):
    """A delivery of the pushed feed, kept so that a repeated delivery id is acknowledged and ignored."""

    __tablename__ = "inbound_deliveries"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    import_run_id: Mapped[str | None] = mapped_column(String(36), default=None)
