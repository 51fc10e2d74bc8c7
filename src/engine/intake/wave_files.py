"""The files a wave's warehouse steps work from: the courier waybill input, the pick list, the delivery upload.

CSV files are UTF-8 with a byte-order mark, so Excel (what the warehouse opens them in) reads the Chinese.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from openpyxl import Workbook
from sqlalchemy.orm import Session

from ecomflow.engine.db.platform_models import PlatformOrder
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import NotFound, ValidationFailed
from ecomflow.engine.intake.fulfilment import get_wave, lines_of, orders_of
from ecomflow.engine.intake.waves import IN_WAVE, PACKED, PICKED, PRINTED, SHIPPED

# Orders still to be worked in the wave, or shipped from it; cancelled ones and cases that left are not.
WORKED = (IN_WAVE, PRINTED, PICKED, PACKED, SHIPPED)
WAYBILL_HEADER = ["订单编号", "收件人", "手机", "收货地址", "商品", "件数"]
PICK_HEADER = ["库位", "SKU", "商品名称", "数量", "订单数"]
# The platforms' bulk-dispatch uploads: Taobao/Tmall 批量发货 (CSV), JD 批量出库 (XLSX).
DELIVERY_UPLOADS: dict[str, dict[str, Any]] = {
    "tmall": {"header": ["订单编号", "物流公司", "运单号"], "format": "csv"},
    "jd": {"header": ["订单号", "物流公司", "运单号"], "format": "xlsx"},
}
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def file_links(wave_id: int, *names: str) -> list[dict[str, str]]:
    """Return the links a task or a wave page shows to the wave's files (downloaded over the API, signed in)."""
    titles = {
        "waybills.csv": "面单打印文件 (waybills)",
        "pick-list.csv": "配货单 (pick list by location)",
        "delivery-upload": "发货上传文件 (platform delivery upload)",
    }
    return [{"title": titles[name], "href": f"/waves/{wave_id}/{name}"} for name in names]


def mask_phone(phone: str | None) -> str:
    """Return a phone number with its middle hidden (138****5678); a platform-masked number stays as it is."""
    if not phone:
        return ""
    digits = phone.strip()
    if "*" in digits or len(digits) < 7:
        return digits
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def waybills_csv(session: Session, wave_id: int) -> bytes:
    """Return one row per order of the wave: what a courier's batch print (批量打单) takes."""
    get_wave(session, wave_id)
    orders = orders_of(session, wave_id, *WORKED)
    lines = lines_of(session, [order.id for order in orders])
    rows = []
    for order in orders:
        found = lines[order.id]
        goods = "; ".join(f"{line.sku or line.title} x{line.quantity}" for line in found)
        rows.append(
            [
                order.order_no,
                order.receiver_name or "",
                mask_phone(order.receiver_phone),
                order.address or "",
                goods,
                sum(line.quantity for line in found),
            ]
        )
    return _csv(WAYBILL_HEADER, rows)


def pick_list_csv(session: Session, wave_id: int) -> bytes:
    """Return the wave's SKU totals at its location (配货单), by SKU, over the orders still to be shipped."""
    wave = get_wave(session, wave_id)
    orders = orders_of(session, wave_id, IN_WAVE, PRINTED, PICKED, PACKED)
    totals: dict[str, list[Any]] = {}
    order_sets: dict[str, set[int]] = defaultdict(set)
    for order_id, found in lines_of(session, [order.id for order in orders]).items():
        for line in found:
            sku = line.sku or "(no merchant code)"
            entry = totals.setdefault(sku, [line.title, 0])
            entry[1] += line.quantity
            order_sets[sku].add(order_id)
    rows = [[wave.location, sku, title, qty, len(order_sets[sku])] for sku, (title, qty) in sorted(totals.items())]
    return _csv(PICK_HEADER, rows)


def delivery_upload(session: Session, wave_id: int, platform: str | None = None) -> tuple[bytes, str, str]:
    """Return a platform's bulk-dispatch file of the wave's shipped orders: (content, media type, file name).

    A wave is per location, so it may hold orders of several platforms: each uploads its own file.
    """
    get_wave(session, wave_id)
    shipped = orders_of(session, wave_id, SHIPPED)
    platform = platform or _only_platform(shipped, wave_id)
    if platform not in DELIVERY_UPLOADS:
        message = f"platform {platform!r} is not one of {', '.join(DELIVERY_UPLOADS)}"
        raise ValidationFailed(message, problems=[FieldProblem(field="platform", rule="enum", message=message)])
    rows = [[o.order_no, o.carrier or "", o.tracking_no or ""] for o in shipped if o.platform == platform]
    if not rows:
        raise NotFound(f"wave {wave_id} has no shipped {platform} orders yet", wave_id=wave_id, platform=platform)
    layout = DELIVERY_UPLOADS[platform]
    if layout["format"] == "csv":
        return _csv(layout["header"], rows), "text/csv; charset=utf-8", f"wave-{wave_id}-{platform}-delivery.csv"
    return _xlsx(layout["header"], rows), XLSX_MEDIA_TYPE, f"wave-{wave_id}-{platform}-delivery.xlsx"


def _only_platform(orders: list[PlatformOrder], wave_id: int) -> str:
    platforms = sorted({order.platform for order in orders})
    if not platforms:
        raise NotFound(f"wave {wave_id} has no shipped orders yet", wave_id=wave_id)
    if len(platforms) > 1:
        message = f"wave {wave_id} shipped orders of {', '.join(platforms)}: name the platform"
        raise ValidationFailed(message, problems=[FieldProblem(field="platform", rule="required", message=message)])
    return platforms[0]


def _xlsx(header: list[str], rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "批量出库"
    sheet.append(header)
    for row in rows:
        # Order and tracking numbers are text: as numbers Excel would round their long digits away.
        sheet.append([str(value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
