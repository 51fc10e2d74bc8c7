"""One export row → one canonical record, or a rejection naming the line, the column and the rule broken."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ecomflow.engine.intake.files import refuse
from ecomflow.engine.intake.mapping import Mapping, Section, normalise_wording
from ecomflow.engine.intake.records import (
    AdRecord,
    OrderLineRecord,
    OrderRecord,
    RefundRecord,
    ReviewRecord,
    TrafficRecord,
    ad_key,
    traffic_key,
)

# Empty as the exports write it: nothing, "null" (JD), "-" or "--" (some Tmall reports).
EMPTY = {"", "null", "NULL", "None", "-", "--"}
# ="3801234567890": Excel's guard that keeps a long number from turning into 3.80123E+12.
EXCEL_GUARD = re.compile(r'^="(.*)"$')
_SPECIAL_START = frozenset(" \t\u3000='")
MONEY_SIGNS = str.maketrans("", "", "￥¥,， ")
# Counts in the traffic and ad reports carry thousands separators (12,345).
COUNT_SIGNS = str.maketrans("", "", ",， ")


class RowRejected(Exception):
    """A row that cannot become a record; the other rows still import."""


def clean(cell: str) -> str:
    """A cell as its value: Excel guards, tabs, spaces and empty markers removed."""
    if cell and cell[0] not in _SPECIAL_START and not cell[-1].isspace() and cell not in EMPTY:
        # Most cells are plain: skip the work (profiled: a third of the check pass).
        return cell
    text = cell.strip()
    guarded = EXCEL_GUARD.match(text)
    if guarded:
        text = guarded.group(1).strip()
    # A leading apostrophe is Excel's other text marker.
    text = text[1:].strip() if text.startswith("'") else text
    return "" if text in EMPTY else text


class RowReader:
    """Reads the rows of one export: finds its columns in the header, then turns each row into field values."""

    def __init__(self, header: list[str], section: Section, mapping: Mapping, *, name: str) -> None:
        self.section = section
        self.mapping = mapping
        self.name = name
        present = {clean(h).lstrip("\ufeff"): i for i, h in reversed(list(enumerate(header)))}
        self.index: dict[str, int] = {}
        for field, headers in section.columns.items():
            for heading in headers:
                if heading in present:
                    self.index[field] = present[heading]
                    break
        missing = [section.column_of(f) for f in section.required if _column_field(f) not in self.index]
        if missing:
            raise refuse(
                name,
                "columns",
                f"the header lacks the column(s) {', '.join(missing)} of a {mapping.platform} {section.kind} export "
                f"(mapping {mapping.source}); is this the right file and --platform?",
            )

    def values(self, cells: list[str]) -> dict[str, str]:
        """The row's cleaned text per mapped field (absent cells are empty)."""
        return {f: clean(cells[i]) if i < len(cells) else "" for f, i in self.index.items()}

    def require(self, values: dict[str, str]) -> None:
        for field in self.section.required:
            if not values.get(_column_field(field)):
                raise RowRejected(f"column {self.section.column_of(field)}: empty (required)")

    def text(self, values: dict[str, str], field: str) -> str | None:
        return values.get(field) or None

    def amount(self, values: dict[str, str], field: str) -> Decimal | None:
        text = values.get(field, "")
        if not text:
            return None
        try:
            amount = Decimal(text.translate(MONEY_SIGNS))
        except InvalidOperation:
            raise RowRejected(f"column {self.section.column_of(field)}: {text!r} is not an amount") from None
        if not amount.is_finite() or amount < 0:
            raise RowRejected(f"column {self.section.column_of(field)}: {text!r} is not an amount of 0 or more")
        return amount.quantize(Decimal("0.01"))

    def count(self, values: dict[str, str], field: str) -> int | None:
        text = values.get(field, "")
        if not text:
            return None
        if not text.isdigit() or int(text) < 1:
            raise RowRejected(f"column {self.section.column_of(field)}: {text!r} is not a whole number of 1 or more")
        return int(text)

    def tally(self, values: dict[str, str], field: str) -> int | None:
        """A count of 0 or more (visitors, impressions, clicks)."""
        text = values.get(field, "")
        if not text:
            return None
        digits = text.translate(COUNT_SIGNS)
        if not digits.isdigit():
            raise RowRejected(f"column {self.section.column_of(field)}: {text!r} is not a whole number of 0 or more")
        return int(digits)

    def day(self, values: dict[str, str], field: str) -> date | None:
        """A local day (统计日期); an XLSX date cell reads as 2026-11-01 00:00:00 and counts as its day."""
        text = values.get(field, "")
        if not text:
            return None
        if len(text) == 19 and text.endswith(" 00:00:00"):
            text = text[:10]
        for pattern in self.mapping.day_formats:
            try:
                return datetime.strptime(text, pattern).date()
            except ValueError:
                continue
        column = self.section.column_of(field)
        raise RowRejected(f"column {column}: {text!r} is not a day ({self.mapping.day_formats[0]})")

    def time(self, values: dict[str, str], field: str) -> datetime | None:
        text = values.get(field, "")
        if not text:
            return None
        if len(text) == 19 and self.mapping.iso_seconds and text[10] == " ":
            # 2026-11-01 09:00:00, the exports' usual spelling: fromisoformat is ten times strptime's speed.
            try:
                return datetime.fromisoformat(text).replace(tzinfo=self.mapping.timezone).astimezone(UTC)
            except ValueError:
                pass
        for pattern in self.mapping.time_formats:
            try:
                # Read as Shanghai's wall clock, kept in UTC (what is stored; and cheaper to stage and hash).
                return datetime.strptime(text, pattern).replace(tzinfo=self.mapping.timezone).astimezone(UTC)
            except ValueError:
                continue
        raise RowRejected(
            f"column {self.section.column_of(field)}: {text!r} is not a time ({self.mapping.time_formats[0]})"
        )

    def coded(self, values: dict[str, str], field: str, table: dict[str, Any], key: str) -> Any:
        text = values.get(field, "")
        if not text:
            return None
        value = table.get(normalise_wording(text))
        if value is None:
            raise RowRejected(
                f"column {self.section.column_of(field)}: unknown wording {text!r} "
                f"(not in the mapping's {self.section.kind}.{key})"
            )
        return value


def _column_field(field: str) -> str:
    return "platform_status" if field == "status" else field


def order_of(reader: RowReader, values: dict[str, str], platform: str) -> OrderRecord:
    """The order of a 订单报表 row (or of a JD line row: its order's columns)."""
    reader.require(values)
    status = reader.coded(values, "platform_status", reader.section.statuses, "statuses")
    changed = reader.text(values, "changed_address")
    return OrderRecord(
        platform=platform,
        order_no=values["order_no"],
        status=status,
        platform_status=values["platform_status"],
        paid_amount=reader.amount(values, "paid_amount") or Decimal("0.00"),
        ordered_at=reader.time(values, "ordered_at"),  # type: ignore[arg-type]
        paid_at=reader.time(values, "paid_at"),
        total_amount=reader.amount(values, "total_amount"),
        postage=reader.amount(values, "postage"),
        shop=reader.text(values, "shop"),
        buyer_nick=reader.text(values, "buyer_nick"),
        receiver_name=reader.text(values, "receiver_name"),
        receiver_phone=reader.text(values, "receiver_phone"),
        # A changed address (修改后的收货地址) is where the parcel goes; the flag tells the checks it moved.
        address=changed or reader.text(values, "address"),
        address_changed=changed is not None,
        buyer_message=reader.text(values, "buyer_message"),
        seller_note=reader.text(values, "seller_note"),
        risk_flag=reader.text(values, "risk_flag"),
        carrier=reader.text(values, "carrier"),
        tracking_no=reader.text(values, "tracking_no"),
        location=reader.text(values, "location"),
    )


def line_of(reader: RowReader, values: dict[str, str]) -> OrderLineRecord:
    """The order line of a 宝贝报表 row or a JD row."""
    for field in ("title", "quantity", "price"):
        if not values.get(field):
            raise RowRejected(f"column {reader.section.column_of(field)}: empty (required)")
    return OrderLineRecord(
        sku=reader.text(values, "sku"),
        title=values["title"],
        quantity=reader.count(values, "quantity"),  # type: ignore[arg-type]
        price=reader.amount(values, "price"),  # type: ignore[arg-type]
    )


def refund_of(reader: RowReader, values: dict[str, str], platform: str) -> RefundRecord:
    """The refund request of a 退款报表 row."""
    reader.require(values)
    carrier, tracking = _carrier_and_number(values.get("return_tracking", ""))
    return RefundRecord(
        platform=platform,
        refund_no=values["refund_no"],
        order_no=values["order_no"],
        kind=reader.coded(values, "kind", reader.section.kinds, "kinds"),
        status=reader.coded(values, "platform_status", reader.section.statuses, "statuses"),
        platform_status=values["platform_status"],
        amount=reader.amount(values, "amount"),  # type: ignore[arg-type]
        requested_at=reader.time(values, "requested_at"),  # type: ignore[arg-type]
        paid_amount=reader.amount(values, "paid_amount"),
        sku=reader.text(values, "sku"),
        title=reader.text(values, "title"),
        reason=reader.text(values, "reason"),
        buyer_nick=reader.text(values, "buyer_nick"),
        completed_at=reader.time(values, "completed_at"),
        return_carrier=carrier,
        return_tracking_no=tracking,
    )


def review_of(reader: RowReader, values: dict[str, str], platform: str) -> ReviewRecord:
    """The review of an 评价 row: a label (好评/中评/差评) or a star count 1–5."""
    reader.require(values)
    label = values["rating"]
    rating = int(label) if label in {"1", "2", "3", "4", "5"} else None
    if rating is None:
        rating = reader.coded(values, "rating", reader.section.ratings, "ratings")
    return ReviewRecord(
        platform=platform,
        review_id=values["review_id"],
        order_no=values["order_no"],
        rating=rating,
        reviewed_at=reader.time(values, "reviewed_at"),  # type: ignore[arg-type]
        rating_label=label,
        sku=reader.text(values, "sku"),
        title=reader.text(values, "title"),
        content=reader.text(values, "content"),
        buyer_nick=reader.text(values, "buyer_nick"),
    )


def traffic_of(reader: RowReader, values: dict[str, str], platform: str) -> TrafficRecord:
    """The traffic of a 生意参谋 row: the shop's day, or an item's day when the export has 商品ID."""
    reader.require(values)
    day = reader.day(values, "day")
    visitors = reader.tally(values, "visitors")
    paid_buyers = reader.tally(values, "paid_buyers")
    if paid_buyers > visitors:  # type: ignore[operator]
        raise RowRejected(
            f"column {reader.section.column_of('paid_buyers')}: {paid_buyers} paying buyers among {visitors} visitors"
        )
    store, item_id = reader.text(values, "store"), reader.text(values, "item_id")
    _fits(reader, values, store=100, item_id=64, sku=64, title=255)
    return TrafficRecord(
        platform=platform,
        row_key=traffic_key(day=day, store=store, item_id=item_id),  # type: ignore[arg-type]
        day=day,  # type: ignore[arg-type]
        visitors=visitors,  # type: ignore[arg-type]
        paid_buyers=paid_buyers,  # type: ignore[arg-type]
        page_views=reader.tally(values, "page_views"),
        paid_amount=reader.amount(values, "paid_amount"),
        store=store,
        item_id=item_id,
        sku=reader.text(values, "sku"),
        title=reader.text(values, "title"),
    )


def ad_of(reader: RowReader, values: dict[str, str], platform: str, source: str) -> AdRecord:
    """The day of one plan (or one creative) in a 直通车/钻展 report."""
    reader.require(values)
    day = reader.day(values, "day")
    impressions, clicks = reader.tally(values, "impressions"), reader.tally(values, "clicks")
    if clicks > impressions:  # type: ignore[operator]
        raise RowRejected(f"column {reader.section.column_of('clicks')}: {clicks} clicks on {impressions} impressions")
    store, plan, creative_id = reader.text(values, "store"), values["plan"], reader.text(values, "creative_id")
    _fits(reader, values, store=100, plan=200, creative_id=64, creative=255)
    return AdRecord(
        platform=platform,
        row_key=ad_key(source=source, day=day, store=store, plan=plan, creative_id=creative_id),  # type: ignore[arg-type]
        source=source,
        day=day,  # type: ignore[arg-type]
        plan=plan,
        impressions=impressions,  # type: ignore[arg-type]
        clicks=clicks,  # type: ignore[arg-type]
        spend=reader.amount(values, "spend"),  # type: ignore[arg-type]
        gmv=reader.amount(values, "gmv"),  # type: ignore[arg-type]
        store=store,
        creative_id=creative_id,
        creative=reader.text(values, "creative"),
    )


def _fits(reader: RowReader, values: dict[str, str], **limits: int) -> None:
    """Refuse a cell longer than its column holds: part of a row's identity must never be cut."""
    for field, limit in limits.items():
        if len(values.get(field, "")) > limit:
            raise RowRejected(f"column {reader.section.column_of(field)}: longer than {limit} characters")


def _carrier_and_number(text: str) -> tuple[str | None, str | None]:
    """退货物流信息 reads "顺丰速运,SF1234567890" (or with a space or a colon): carrier, then number."""
    if not text:
        return None, None
    parts = [p for p in re.split(r"[,，:：\s]+", text) if p]
    if len(parts) == 1:
        return None, parts[0][:64]
    return parts[0][:50], parts[-1][:64]
