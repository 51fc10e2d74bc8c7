"""Response bodies of platform orders (/orders) and waves (/waves)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


class OrderLineOut(BaseModel):
    line_no: int
    sku: str | None
    title: str
    quantity: int
    price: Decimal


class OrderEventOut(BaseModel):
    at: datetime
    type: str
    actor: str
    data: dict[str, Any]


class WaveRef(BaseModel):
    id: int
    location: str
    state: str
    instance_id: str | None


class OrderOut(BaseModel):
    platform: str
    order_no: str
    shop: str | None
    status: str
    platform_status: str
    paid_amount: Decimal
    ordered_at: datetime
    paid_at: datetime | None
    location: str | None
    # Where the order stands here: in_wave, exception, waybill_printed, picked, packed, shipped, cancelled.
    fulfilment_state: str | None
    carrier: str | None
    tracking_no: str | None
    wave: WaveRef | None
    # The order's own case after it left its wave (an order_fulfilment instance), if any.
    case_instance_id: str | None
    inquiry_instance_id: str | None
    lines: list[OrderLineOut]
    history: list[OrderEventOut]


class WaveOrderOut(BaseModel):
    platform: str
    order_no: str
    fulfilment_state: str | None
    tracking_no: str | None


class FileLink(BaseModel):
    title: str
    href: str


class WaveOut(BaseModel):
    id: int
    location: str
    state: str
    opened_at: datetime
    closes_at: datetime
    closed_at: datetime | None
    order_count: int
    instance_id: str | None
    orders: list[WaveOrderOut]
    files: list[FileLink]
