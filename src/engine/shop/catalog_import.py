"""Catalogue import and export: one row per variant, as CSV (UTF-8, UTF-8 with BOM, GBK) or XLSX.

Columns: product_code, title, category, brand, online_only, sku, colour, size, barcode, list_price, and
one `stock@<LOCATION>` column per stock location (WH… codes are warehouses, others stores; unknown
locations are created). Rows of one product repeat its product fields, which must agree.

The whole file is checked before anything is written; every bad row is named with its line and reason.
Stock figures set the on-hand count: the difference is an `adjust` movement in the ledger, keyed by the
file's digest so importing the same file twice moves nothing the second time.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook, load_workbook
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ecomflow.engine.access import check_may_edit_catalog
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Location, Product, StockBalance, StockMovement, Variant
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.shop.catalog import CODE, parse_price
from ecomflow.engine.shop.stock import move

COLUMNS = (
    "product_code",
    "title",
    "category",
    "brand",
    "online_only",
    "sku",
    "colour",
    "size",
    "barcode",
    "list_price",
)
REQUIRED = ("product_code", "title", "category", "sku", "list_price")
STOCK_PREFIX = "stock@"
TRUE = {"1", "true", "yes", "y", "是", "t"}
FALSE = {"", "0", "false", "no", "n", "否", "f"}
BATCH = 1000
Progress = Callable[[int, int], None]


@dataclass
class Row:
    """A good row: its line in the file, its product and variant fields and its stock per location."""

    line: int
    product: dict[str, Any]
    variant: dict[str, Any]
    stock: dict[str, int]


@dataclass
class Checked:
    """The file checked: good rows, bad rows (line, reason), the stock locations named and the file's digest."""

    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    digest: str = ""


@dataclass
class Imported:
    """What an import wrote."""

    products: int
    variants: int
    movements: int
    skipped: list[tuple[int, str]]


def decode(data: bytes) -> str:
    """Decode a CSV's bytes: UTF-8 with or without BOM, else GBK/GB18030 (what Chinese Excel saves)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def read_table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Return the header and (line number, cells) of each data row of a CSV or XLSX file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        book = load_workbook(path, read_only=True, data_only=True)
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [_cell(c) for c in next(rows, ())]

        def xlsx_rows() -> Iterator[tuple[int, list[str]]]:
            for number, values in enumerate(rows, start=2):
                cells = [_cell(c) for c in values]
                if any(cells):
                    yield number, cells
            book.close()

        return header, xlsx_rows()
    text = decode(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]

    def csv_rows() -> Iterator[tuple[int, list[str]]]:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells

    return header, csv_rows()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def check_file(path: Path, *, session: Session | None = None) -> Checked:
    """Check every row of the file; with a session, also against the catalogue (a SKU of another product)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    header, rows = read_table(path)
    checked = Checked(digest=digest)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        checked.bad.append((1, f"header lacks the column(s) {', '.join(missing)}"))
        return checked
    stock_columns = [(i, h[len(STOCK_PREFIX) :]) for i, h in enumerate(header) if h.startswith(STOCK_PREFIX)]
    checked.locations = [loc for _, loc in stock_columns]
    for _, loc in stock_columns:
        if not CODE.match(loc) or len(loc) > 32:
            checked.bad.append((1, f"stock column {STOCK_PREFIX}{loc}: not a location code"))
    index = {name: i for i, name in enumerate(header) if name in COLUMNS}
    products: dict[str, tuple[int, dict[str, Any]]] = {}
    skus: dict[str, int] = {}
    for line, cells in rows:
        value = {name: (cells[i].strip() if i < len(cells) else "") for name, i in index.items()}
        reasons = []
        for name in REQUIRED:
            if not value.get(name):
                reasons.append(f"{name} is empty")
        code, sku = value.get("product_code", ""), value.get("sku", "")
        if code and not CODE.match(code):
            reasons.append(f"product_code {code!r} is not a code (letters, digits, . _ -)")
        if sku and not CODE.match(sku):
            reasons.append(f"sku {sku!r} is not a code (letters, digits, . _ -)")
        if len(value.get("title", "")) > 200:
            reasons.append("title is longer than 200 characters")
        for name in ("category", "brand"):
            if len(value.get(name, "")) > 64:
                reasons.append(f"{name} is longer than 64 characters")
        for name in ("colour", "size"):
            if len(value.get(name, "")) > 32:
                reasons.append(f"{name} is longer than 32 characters")
        price: Decimal | None = None
        if value.get("list_price"):
            try:
                price = parse_price(value["list_price"])
            except ValueError as exc:
                reasons.append(str(exc))
        flag = value.get("online_only", "").lower()
        if flag not in TRUE | FALSE:
            reasons.append(f"online_only {value.get('online_only')!r} is not yes/no")
        stock: dict[str, int] = {}
        for i, loc in stock_columns:
            raw = cells[i].strip() if i < len(cells) else ""
            if raw == "":
                continue
            if not raw.isdigit():
                reasons.append(f"{STOCK_PREFIX}{loc} {raw!r} is not a whole number of at least 0")
            else:
                stock[loc] = int(raw)
        product = {
            "code": code,
            "title": value.get("title", ""),
            "category": value.get("category", ""),
            "brand": value.get("brand", ""),
            "online_only": flag in TRUE,
        }
        if sku in skus:
            reasons.append(f"sku {sku} appears on line {skus[sku]} already")
        if code in products and products[code][1] != product and not reasons:
            first = products[code][0]
            reasons.append(f"product {code}: title, category, brand or online_only differ from line {first}")
        if reasons:
            checked.bad.append((line, "; ".join(reasons)))
            continue
        skus[sku] = line
        products.setdefault(code, (line, product))
        variant = {
            "code": sku,
            "attributes": {
                k: v for k, v in (("colour", value.get("colour", "")), ("size", value.get("size", ""))) if v
            },
            "barcode": value.get("barcode") or None,
            "list_price": price,
        }
        checked.rows.append(Row(line=line, product=product, variant=variant, stock=stock))
    if session is not None:
        _check_against_catalogue(session, checked)
    return checked


def _check_against_catalogue(session: Session, checked: Checked) -> None:
    """Move to the bad rows those whose SKU belongs to another product in the catalogue."""
    owner: dict[str, str] = {}
    codes = [row.variant["code"] for row in checked.rows]
    for start in range(0, len(codes), BATCH):
        chunk = codes[start : start + BATCH]
        owner.update(
            session.execute(
                select(Variant.code, Product.code)
                .join(Product, Product.id == Variant.product_id)
                .where(Variant.code.in_(chunk))
            ).all()
        )
    good = []
    for row in checked.rows:
        held = owner.get(row.variant["code"])
        if held is not None and held != row.product["code"]:
            checked.bad.append((row.line, f"sku {row.variant['code']} belongs to product {held} in the catalogue"))
        else:
            good.append(row)
    checked.rows = good
    checked.bad.sort()


def write_report(path: Path, bad: list[tuple[int, str]]) -> None:
    """Write the rows left out as CSV (line, reason), UTF-8 with BOM so Excel opens it."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason"])
        writer.writerows(bad)


def import_rows(
    session: Session, checked: Checked, *, principal: Principal, source: str, progress: Progress | None = None
) -> Imported:
    """Write the checked good rows: products and variants upserted, stock set through the ledger; audited."""
    check_may_edit_catalog(principal)
    now = utcnow()
    _ensure_locations(session, checked.locations, now)
    total, done = len(checked.rows), 0
    products_written, movements = 0, 0
    for start in range(0, total, BATCH):
        batch = checked.rows[start : start + BATCH]
        ids = _upsert_products(session, batch, now)
        products_written += len({row.product["code"] for row in batch})
        _upsert_variants(session, batch, ids, now)
        movements += _set_stock(session, batch, digest=checked.digest, actor=principal.name, now=now)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    record_event(
        session,
        type="catalog.imported",
        actor=principal.name,
        data={
            "source": source,
            "digest": checked.digest,
            "variants": total,
            "products": len({row.product["code"] for row in checked.rows}),
            "stock_movements": movements,
            "skipped_lines": [line for line, _ in checked.bad],
        },
    )
    return Imported(
        products=len({row.product["code"] for row in checked.rows}),
        variants=total,
        movements=movements,
        skipped=checked.bad,
    )


def _ensure_locations(session: Session, codes: list[str], now: Any) -> None:
    known = set(session.scalars(select(Location.code)))
    for code in codes:
        if code not in known:
            kind = "warehouse" if code.upper().startswith("WH") else "store"
            session.add(Location(code=code, name=code, kind=kind, created_at=now))
    session.flush()


def _upsert_products(session: Session, batch: list[Row], now: Any) -> dict[str, int]:
    wanted = {row.product["code"]: row.product for row in batch}
    ids = dict(session.execute(select(Product.code, Product.id).where(Product.code.in_(list(wanted)))).all())
    known = set(ids)
    new = [{**p, "created_at": now, "updated_at": now} for code, p in wanted.items() if code not in known]
    if new:
        session.execute(insert(Product), new)
        ids.update(
            session.execute(select(Product.code, Product.id).where(Product.code.in_([p["code"] for p in new]))).all()
        )
    old = [
        {"id": ids[code], **{k: v for k, v in p.items() if k != "code"}, "updated_at": now}
        for code, p in wanted.items()
        if code in known
    ]
    if old:
        session.execute(update(Product), old)
    return ids


def _upsert_variants(session: Session, batch: list[Row], ids: dict[str, int], now: Any) -> None:
    codes = [row.variant["code"] for row in batch]
    held = dict(session.execute(select(Variant.code, Variant.id).where(Variant.code.in_(codes))).all())
    new, old = [], []
    for row in batch:
        values = {**row.variant, "product_id": ids[row.product["code"]], "updated_at": now}
        if row.variant["code"] in held:
            old.append({**{k: v for k, v in values.items() if k != "code"}, "id": held[row.variant["code"]]})
        else:
            new.append({**values, "created_at": now})
    if new:
        session.execute(insert(Variant), new)
    if old:
        session.execute(update(Variant), old)


def _set_stock(session: Session, batch: list[Row], *, digest: str, actor: str, now: Any) -> int:
    """Bring each on-hand figure to the file's: fresh balances in bulk, existing ones by a ledger adjustment."""
    wanted = [(row.variant["code"], loc, qty) for row in batch for loc, qty in row.stock.items()]
    if not wanted:
        return 0
    skus = sorted({sku for sku, _, _ in wanted})
    balances = {
        (b.sku, b.location): b.on_hand for b in session.scalars(select(StockBalance).where(StockBalance.sku.in_(skus)))
    }
    fresh_movements, fresh_balances, moved = [], [], 0
    for sku, loc, qty in wanted:
        key = f"catalog-import/{digest}/{sku}@{loc}"
        if (sku, loc) not in balances:
            fresh_balances.append({"sku": sku, "location": loc, "on_hand": qty, "reserved": 0, "updated_at": now})
            if qty:
                fresh_movements.append(
                    {
                        "kind": "adjust",
                        "sku": sku,
                        "location": loc,
                        "quantity": qty,
                        "business_key": key,
                        "reason": "catalogue import: opening stock",
                        "actor": actor,
                        "created_at": now,
                    }
                )
        elif qty != balances[(sku, loc)]:
            move(
                session,
                kind="adjust",
                sku=sku,
                location=loc,
                quantity=qty - balances[(sku, loc)],
                business_key=key,
                actor=actor,
                reason="catalogue import: stock count",
            )
            moved += 1
    if fresh_balances:
        session.execute(insert(StockBalance), fresh_balances)
    if fresh_movements:
        session.execute(insert(StockMovement), fresh_movements)
    return moved + len(fresh_movements)


def export_rows(session: Session) -> tuple[list[str], Iterator[list[Any]]]:
    """Return the header and rows of the whole catalogue in the import's columns (stock per location)."""
    locations = list(session.scalars(select(Location.code).order_by(Location.code)))
    header = [*COLUMNS, *(f"{STOCK_PREFIX}{loc}" for loc in locations)]

    def rows() -> Iterator[list[Any]]:
        stock: dict[tuple[str, str], int] = {
            (b.sku, b.location): b.on_hand for b in session.scalars(select(StockBalance))
        }
        query = (
            select(Product, Variant)
            .join(Variant, Variant.product_id == Product.id)
            .order_by(Product.code, Variant.code)
        )
        for product, variant in session.execute(query):
            yield [
                product.code,
                product.title,
                product.category,
                product.brand,
                "yes" if product.online_only else "no",
                variant.code,
                (variant.attributes or {}).get("colour", ""),
                (variant.attributes or {}).get("size", ""),
                variant.barcode or "",
                float(variant.list_price),
                *(stock.get((variant.code, loc), 0) for loc in locations),
            ]

    return header, rows()


def write_table(path: Path | BinaryIO, header: list[str], rows: Iterator[list[Any]]) -> int:
    """Write rows as XLSX (a .xlsx path or a binary stream; write-only so memory stays flat) or CSV with BOM."""
    count = 0
    if not isinstance(path, Path) or path.suffix.lower() == ".xlsx":
        book = Workbook(write_only=True)
        sheet = book.create_sheet("catalogue")
        sheet.append(header)
        for row in rows:
            sheet.append(row)
            count += 1
        book.save(path)
        return count
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
