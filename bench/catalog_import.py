"""Catalogue import of 100,000 variants: time and peak memory, against a plain bulk insert of the same rows.

A CSV of N variants (5 per product, stock at 3 locations) is written once. Each measurement runs in a
fresh process on a fresh, migrated database:
- ours: `ecomflow catalog import`'s path (check_file: the whole file checked, every row; then
  import_rows: products and variants upserted in batches of 1,000, stock set through the ledger
  with one opening movement per SKU and location, one audit event), one transaction;
- baseline: the same CSV read with csv.DictReader and the same rows (products, variants, balances,
  movements) inserted with SQLAlchemy Core executemany in batches of 1,000, no checks.
Peak memory is the process's maximum resident set (ru_maxrss) less its resident set before the work.

    cd /work/main && .venv/bin/python -m bench.catalog_import --db sqlite [--variants 100000] [--record]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.harness.fresh_process import measure_in_fresh_process, peak_mb_since, rss_kb
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg

LOCATIONS = ("WH-ONLINE", "ST-SH01", "ST-HZ01")
PER_PRODUCT = 5
COLOURS = ("白色", "黑色", "灰色", "藏青", "卡其")
SIZES = ("S", "M", "L", "XL", "XXL")
BATCH = 1000


def write_catalogue(path: Path, variants: int) -> None:
    """Write a CSV of the given number of variants, 5 per product, Chinese titles, stock at 3 locations."""
    header = ["product_code", "title", "category", "brand", "online_only", "sku", "colour", "size", "barcode"]
    header += ["list_price", *(f"stock@{loc}" for loc in LOCATIONS)]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for number in range(variants):
            product = number // PER_PRODUCT
            variant = number % PER_PRODUCT
            writer.writerow(
                [
                    f"P{product:06d}",
                    f"纯棉圆领T恤 款{product}",
                    "T恤",
                    "棉言",
                    "yes" if product % 10 == 0 else "no",
                    f"P{product:06d}-{variant}",
                    COLOURS[variant],
                    SIZES[variant],
                    f"69{number:010d}",
                    f"{99 + product % 300}.00",
                    number % 200,
                    number % 7,
                    number % 5,
                ]
            )


def _ours(url: str, path: str) -> dict[str, Any]:
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.people.principals import SYSTEM
    from ecomflow.engine.shop.catalog_import import check_file, import_rows

    before = rss_kb()
    started = time.perf_counter()
    with session_scope(url) as session:
        checked = check_file(Path(path), session=session)
        checked_at = time.perf_counter()
        imported = import_rows(session, checked, principal=SYSTEM, source=Path(path).name)
    ended = time.perf_counter()
    return {
        "seconds": ended - started,
        "check_seconds": checked_at - started,
        "peak_mb": peak_mb_since(before),
        "variants": imported.variants,
        "movements": imported.movements,
        "bad": len(checked.bad),
    }


def _plain(url: str, path: str) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.models import Location, Product, StockBalance, StockMovement, Variant
    from ecomflow.engine.db.sessions import session_scope

    before = rss_kb()
    started = time.perf_counter()
    now = utcnow()
    movements = 0
    with session_scope(url) as session, open(path, encoding="utf-8", newline="") as file:
        session.execute(
            insert(Location), [{"code": c, "name": c, "kind": "store", "created_at": now} for c in LOCATIONS]
        )
        rows = list(csv.DictReader(file))
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            products = {
                r["product_code"]: {
                    "code": r["product_code"],
                    "title": r["title"],
                    "category": r["category"],
                    "brand": r["brand"],
                    "online_only": r["online_only"] == "yes",
                    "created_at": now,
                    "updated_at": now,
                }
                for r in batch
            }
            session.execute(insert(Product), list(products.values()))
            ids = dict(session.execute(select(Product.code, Product.id).where(Product.code.in_(list(products)))).all())
            session.execute(
                insert(Variant),
                [
                    {
                        "code": r["sku"],
                        "product_id": ids[r["product_code"]],
                        "attributes": {"colour": r["colour"], "size": r["size"]},
                        "barcode": r["barcode"],
                        "list_price": Decimal(r["list_price"]),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for r in batch
                ],
            )
            stock = [(r["sku"], loc, int(r[f"stock@{loc}"])) for r in batch for loc in LOCATIONS]
            session.execute(
                insert(StockBalance),
                [{"sku": s, "location": loc, "on_hand": q, "reserved": 0, "updated_at": now} for s, loc, q in stock],
            )
            moved = [
                {
                    "kind": "adjust",
                    "sku": s,
                    "location": loc,
                    "quantity": q,
                    "business_key": f"plain/{s}@{loc}",
                    "reason": "opening stock",
                    "actor": "bench",
                    "created_at": now,
                }
                for s, loc, q in stock
                if q
            ]
            if moved:
                session.execute(insert(StockMovement), moved)
            movements += len(moved)
    ended = time.perf_counter()
    return {
        "seconds": ended - started,
        "peak_mb": peak_mb_since(before),
        "variants": len(rows),
        "movements": movements,
    }


def _measure(kind: str, db: str, data_dir: Path, csv_path: Path) -> dict[str, Any]:
    """Run one measurement in a fresh process on a fresh, migrated database."""
    return measure_in_fresh_process(_ours if kind == "ours" else _plain, db, data_dir / kind, str(csv_path))


def run(db: str, *, variants: int, keep_data: bool = False) -> dict[str, Any]:
    """Write the catalogue, then measure our import and the plain bulk insert; return the figures."""
    load_before = loadavg()
    data_dir = make_data_dir("catalog-import")
    try:
        csv_path = data_dir / "catalogue.csv"
        write_catalogue(csv_path, variants)
        figures = {
            "load_before": load_before,
            "variants": variants,
            "file_mb": csv_path.stat().st_size / 1024 / 1024,
            "ours": _measure("ours", db, data_dir, csv_path),
            "plain": _measure("plain", db, data_dir, csv_path),
        }
    finally:
        finish_data_dir(data_dir, keep=keep_data)
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    ours, plain = figures["ours"], figures["plain"]
    return [
        ("variants (products, locations)", f"{figures['variants']} ({figures['variants'] // PER_PRODUCT}, 3)"),
        ("CSV size", f"{figures['file_mb']:.1f} MB"),
        (
            "ours: import (check + write)",
            f"{ours['seconds']:.1f} s ({ours['variants'] / ours['seconds']:.0f} variants/s)",
        ),
        ("ours: of which checking the whole file", f"{ours['check_seconds']:.1f} s"),
        ("ours: peak memory over the start", f"{ours['peak_mb']:.0f} MB"),
        ("ours: stock movements written", str(ours["movements"])),
        (
            "plain bulk insert",
            f"{plain['seconds']:.1f} s ({plain['variants'] / plain['seconds']:.0f} variants/s)",
        ),
        ("plain: peak memory over the start", f"{plain['peak_mb']:.0f} MB"),
        ("plain: stock movements written", str(plain["movements"])),
    ]


def ratio_text(figures: dict[str, Any]) -> str:
    ours, plain = figures["ours"], figures["plain"]
    return (
        f"ours takes {ours['seconds'] / plain['seconds']:.2f}× the plain bulk insert's time "
        f"and {ours['peak_mb'] / max(plain['peak_mb'], 1):.2f}× its peak memory"
    )


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    return Entry(benchmark="catalog_import", setting=setting, ratio=ratio_text(figures), rows=rows(figures))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its rows and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.catalog_import", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument("--variants", type=int, default=100_000, help="variants in the CSV (5 per product)")
    args = parser.parse_args(argv)
    figures = run(args.db, variants=args.variants, keep_data=args.keep)
    print_rows(rows(figures))
    print(ratio_text(figures))
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.catalog_import",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
