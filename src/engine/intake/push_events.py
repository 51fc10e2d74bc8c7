"""The pushed feed's body: one platform, one kind, its events, checked field by field before anything is written.

The events carry the canonical fields of records.py; amounts are decimal strings ("89.00", never a JSON number:
a float loses cents), times ISO 8601 with their offset ("2026-12-01T10:00:00+08:00").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.intake.records import (
    OrderLineRecord,
    OrderRecord,
    RefundRecord,
    ReviewRecord,
)

MAX_EVENTS = 1000


def _decimal_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError('an amount is a decimal string such as "89.00", not a JSON number')
    return value


Amount = Annotated[Decimal, BeforeValidator(_decimal_string), Field(ge=0, max_digits=14, decimal_places=2)]
Text = Annotated[str, Field(max_length=2000)]


# Non-empty strings no longer than their column.
Str16 = Annotated[str, Field(min_length=1, max_length=16)]
Str32 = Annotated[str, Field(min_length=1, max_length=32)]
Str40 = Annotated[str, Field(min_length=1, max_length=40)]
Str50 = Annotated[str, Field(min_length=1, max_length=50)]
Str64 = Annotated[str, Field(min_length=1, max_length=64)]
Str100 = Annotated[str, Field(min_length=1, max_length=100)]
Str128 = Annotated[str, Field(min_length=1, max_length=128)]
Str255 = Annotated[str, Field(min_length=1, max_length=255)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderLineEvent(_Event):
    sku: Str64 | None = None
    title: Str255
    quantity: Annotated[int, Field(ge=1, le=100_000)]
    price: Amount


class OrderEvent(_Event):
    order_no: Str64
    status: Literal["awaiting_payment", "paid", "shipped", "completed", "cancelled"]
    platform_status: Str64
    paid_amount: Amount
    ordered_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    total_amount: Amount | None = None
    postage: Amount | None = None
    shop: Str100 | None = None
    buyer_nick: Str100 | None = None
    receiver_name: Str100 | None = None
    receiver_phone: Str40 | None = None
    address: Text | None = None
    buyer_message: Text | None = None
    seller_note: Text | None = None
    address_changed: bool = False
    risk_flag: Str255 | None = None
    carrier: Str50 | None = None
    tracking_no: Str64 | None = None
    location: Str32 | None = None
    lines: Annotated[list[OrderLineEvent], Field(max_length=500)] = []

    def record(self, platform: str) -> OrderRecord:
        fields = self.model_dump(exclude={"lines"})
        lines = tuple(OrderLineRecord(**line.model_dump()) for line in self.lines)
        return OrderRecord(platform=platform, lines=lines, **fields)


class RefundEvent(_Event):
    refund_no: Str64
    order_no: Str64
    # 仅退款, 退货退款, 换货.
    kind: Literal["refund_only", "return_refund", "exchange"]
    status: Literal["requested", "awaiting_return", "returned", "refunded", "rejected", "cancelled"]
    platform_status: Str64
    amount: Amount
    requested_at: AwareDatetime
    paid_amount: Amount | None = None
    sku: Str64 | None = None
    title: Str255 | None = None
    reason: Text | None = None
    buyer_nick: Str100 | None = None
    completed_at: AwareDatetime | None = None
    return_carrier: Str50 | None = None
    return_tracking_no: Str64 | None = None

    def record(self, platform: str) -> RefundRecord:
        return RefundRecord(platform=platform, **self.model_dump())


class ReviewEvent(_Event):
    review_id: Str128
    order_no: Str64
    rating: Annotated[int, Field(ge=1, le=5)]
    reviewed_at: AwareDatetime
    rating_label: Str16 | None = None
    sku: Str64 | None = None
    title: Str255 | None = None
    content: Text | None = None
    buyer_nick: Str100 | None = None

    def record(self, platform: str) -> ReviewRecord:
        return ReviewRecord(platform=platform, **self.model_dump())


class OrdersBatch(_Event):
    platform: Literal["tmall", "jd"]
    kind: Literal["orders"]
    events: Annotated[list[OrderEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class RefundsBatch(_Event):
    platform: Literal["tmall", "jd"]
    kind: Literal["refunds"]
    events: Annotated[list[RefundEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class ReviewsBatch(_Event):
    platform: Literal["tmall", "jd"]
    kind: Literal["reviews"]
    events: Annotated[list[ReviewEvent], Field(min_length=1, max_length=MAX_EVENTS)]


BATCHES: dict[str, type[_Event]] = {"orders": OrdersBatch, "refunds": RefundsBatch, "reviews": ReviewsBatch}


@dataclass(frozen=True)
class Batch:
    """A checked batch: the records every import path produces."""

    platform: str
    kind: str
    records: list[Any]


def parse_batch(body: bytes) -> Batch:
    """Return the body's records, or raise ValidationFailed naming every bad field (events[0].amount …)."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refusal([FieldProblem("body", "json", f"body: not JSON ({exc})")]) from None
    if not isinstance(raw, dict):
        raise _refusal([FieldProblem("body", "type", "body: must be a JSON object {platform, kind, events}")])
    model = BATCHES.get(raw.get("kind"))  # type: ignore[arg-type]
    if model is None:
        message = f"kind: must be one of {', '.join(BATCHES)}, not {raw.get('kind')!r}"
        raise _refusal([FieldProblem("kind", "enum", message)])
    try:
        batch = model.model_validate(raw)
    except ValidationError as exc:
        raise _refusal([_problem(error) for error in exc.errors()]) from None
    platform = batch.platform  # type: ignore[attr-defined]
    return Batch(platform=platform, kind=raw["kind"], records=[e.record(platform) for e in batch.events])  # type: ignore[attr-defined]


def field_path(loc: tuple[Any, ...]) -> str:
    """Return a pydantic location as the field path a caller reads: events[0].amount."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith("function-"):  # a validator's step, not a field
            path += f".{part}" if path else str(part)
    return path


def _problem(error: Any) -> FieldProblem:
    path = field_path(tuple(error["loc"]))
    return FieldProblem(path, error["type"], f"{path}: {error['msg']}")


def _refusal(problems: list[FieldProblem]) -> ValidationFailed:
    detail = "; ".join(p.message for p in problems[:10])
    return ValidationFailed(f"the pushed batch breaks {len(problems)} rule(s): {detail}", problems=problems)
