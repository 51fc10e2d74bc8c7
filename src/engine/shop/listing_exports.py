"""On publish, a listing's bulk-upload files are written and kept with its instance, for download."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.files.generated import store_generated
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.shop.listing_files import CSV_TYPE, XLSX_TYPE, ListedSku, ListingFile, jd_xlsx, taobao_csv

# The generated files' names on the instance, in the order the pages list them.
TAOBAO_CSV = "taobao_csv"
JD_XLSX = "jd_xlsx"
# Where a published result lists the files' attachment ids; the pages show a value under it as downloads.
BULK_UPLOAD_FILES = "bulk_upload_files"


def listing_file_of(
    listing: dict[str, Any], *, code: str, prices: dict[str, Any], timezone: str, public_url: str
) -> ListingFile:
    """Return what the files carry: the prepared listing with each SKU's online price as published."""
    zone = ZoneInfo(timezone)
    go_live = datetime.fromisoformat(listing["go_live_at"])
    # A form's datetime without an offset is calendar time where the shop is.
    go_live = go_live.replace(tzinfo=zone) if go_live.tzinfo is None else go_live.astimezone(zone)
    return ListingFile(
        code=code,
        title=listing["title"],
        category=listing.get("category") or "",
        shipping_template=listing.get("shipping_template") or "",
        go_live_at=go_live.strftime("%Y-%m-%d %H:%M:%S"),
        skus=[
            ListedSku(
                sku=row["sku"],
                spec=row.get("spec") or "",
                price=Decimal(str(prices[row["sku"]])).quantize(Decimal("0.01")),
                stock=int(row.get("stock") or 0),
            )
            for row in listing["skus"]
        ],
        image_urls=[f"{public_url}/attachments/{image}" for image in listing.get("main_images") or []],
    )


def write_listing_files(
    session: Session, *, instance_id: str, listing: dict[str, Any], code: str, prices: dict[str, Any], timezone: str
) -> list[str]:
    """Store the 淘宝助理 CSV and the JD XLSX of the listing on its instance (once); return their attachment ids."""
    export = listing_file_of(
        listing, code=code, prices=prices, timezone=timezone, public_url=get_settings().resolved_public_url
    )
    files = (
        (TAOBAO_CSV, f"{code}-taobao.csv", CSV_TYPE, taobao_csv(export)),
        (JD_XLSX, f"{code}-jd.xlsx", XLSX_TYPE, jd_xlsx(export)),
    )
    return [
        store_generated(
            session,
            data=data,
            filename=filename,
            content_type=content_type,
            instance_id=instance_id,
            name=name,
            actor=SYSTEM_ACTOR,
        ).id
        for name, filename, content_type, data in files
    ]
