"""Order import of 100,000 Tmall orders (订单报表 + 宝贝报表, GBK): time and peak memory, against a plain bulk insert.

The two GBK CSVs are written once per size by the sample-export generator (orders with 1–3 lines, no
malformed rows, so both sides write the same orders). Each measurement runs in a fresh process on a
fresh, migrated database:
- ours: `ecomflow import orders`'s path (importer.check: every row of both files checked into the on-disk
  staging, lines joined to their orders; importer.write: batches of 1,000 orders through ingest.apply, one
  transaction each: existing ids selected, orders/lines/events bulk inserted, waves.order_changed called per
  order, one audit event at the end);
- baseline: the same two files read with csv.DictReader (GBK), the lines held in a dict by order number,
  and the orders and lines inserted with SQLAlchemy Core executemany in batches of 1,000, no checks, no
  events, one transaction.
Run at two sizes (10,000 and 100,000 by default) to show whether memory stays flat as the file grows.
Peak memory is the process's maximum resident set (ru_maxrss) less its resident set before the work.
Wall time depends on what else the (shared) machine runs: each side's CPU time is given beside it.

    cd /work/main && .venv/bin/python -m bench.order_import --db sqlite [--orders 10000 100000] [--record]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness.fresh_process import measure_in_fresh_process, peak_mb_since, rss_kb
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg

BATCH = 1000
TARGET_SECONDS = 60
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _ours(url: str, orders: str, items: str) -> dict[str, Any]:
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.intake import importer
    from ecomflow.engine.intake.mapping import load_mapping
    from ecomflow.engine.people.principals import SYSTEM

    before = rss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    checked = importer.check("orders", Path(orders), load_mapping("tmall"), lines_path=Path(items))
    checked_at = time.perf_counter()
    try:
        run_id = importer.write(checked, actor=SYSTEM.name, source=f"file:{Path(orders).name}", url=url)
    finally:
        checked.staging.close()
    ended = time.perf_counter()
    with session_scope(url) as session:
        report = importer.report(session, run_id)
    return {
        "seconds": ended - started,
        "cpu_seconds": time.process_time() - cpu,
        "check_seconds": checked_at - started,
        "peak_mb": peak_mb_since(before),
        "orders": report["created"],
        "rejected": report["rejected"],
    }


def _plain(url: str, orders: str, items: str) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine
    from ecomflow.engine.db.sessions import session_scope

    before = rss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    now = utcnow()
    lines: dict[str, list[dict[str, Any]]] = {}
    with open(items, encoding="gbk", newline="") as file:
        for row in csv.DictReader(file):
            lines.setdefault(row["订单编号"].strip('="'), []).append(row)
    written = 0
    with session_scope(url) as session, open(orders, encoding="gbk", newline="") as file:
        reader = csv.DictReader(file)
        while batch := [row for _, row in zip(range(BATCH), reader, strict=False)]:
            values = [
                {
                    "platform": "tmall",
                    "order_no": row["订单编号"].strip('="'),
                    "status": "paid",
                    "platform_status": row["订单状态"],
                    "paid_amount": Decimal(row["买家实际支付金额"]),
                    "total_amount": Decimal(row["总金额"]),
                    "postage": Decimal(row["买家应付邮费"]),
                    "ordered_at": datetime.strptime(row["订单创建时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI),
                    "buyer_nick": row["买家会员名"],
                    "receiver_name": row["收货人姓名"],
                    "receiver_phone": row["联系手机"],
                    "address": row["收货地址"],
                    "content_hash": "-",
                    "imported_at": now,
                    "updated_at": now,
                }
                for row in batch
            ]
            session.execute(insert(PlatformOrder), values)
            keys = [v["order_no"] for v in values]
            ids = dict(
                session.execute(
                    select(PlatformOrder.order_no, PlatformOrder.id).where(PlatformOrder.order_no.in_(keys))
                ).all()
            )
            line_rows = [
                {
                    "order_id": ids[key],
                    "line_no": number,
                    "sku": line["商家编码"],
                    "title": line["标题"],
                    "quantity": int(line["购买数量"]),
                    "price": Decimal(line["价格"]),
                }
                for key in keys
                for number, line in enumerate(lines.get(key, ()), start=1)
            ]
            if line_rows:
                session.execute(insert(PlatformOrderLine), line_rows)
            written += len(values)
    ended = time.perf_counter()
    return {
        "seconds": ended - started,
        "cpu_seconds": time.process_time() - cpu,
        "peak_mb": peak_mb_since(before),
        "orders": written,
    }


def run(db: str, *, sizes: list[int], keep_data: bool = False) -> dict[str, Any]:
    """Write the exports of each size, then measure our import and the plain bulk insert on each."""
    from ecomflow.sample_exports import items_path, write_export

    load_before = loadavg()
    data_dir = make_data_dir("order-import")
    figures: dict[str, Any] = {"load_before": load_before, "sizes": {}}
    try:
        for size in sizes:
            orders = data_dir / f"orders-{size}.csv"
            made = time.perf_counter()
            write_export("orders", "tmall", orders, count=size, fmt="gbk", seed=1)
            items = items_path(orders)
            figures["sizes"][size] = {
                "generate_seconds": time.perf_counter() - made,
                "file_mb": (orders.stat().st_size + items.stat().st_size) / 1024 / 1024,
                "ours": measure_in_fresh_process(_ours, db, data_dir / f"ours-{size}", str(orders), str(items)),
                "plain": measure_in_fresh_process(_plain, db, data_dir / f"plain-{size}", str(orders), str(items)),
            }
    finally:
        finish_data_dir(data_dir, keep=keep_data)
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    table: list[tuple[str, str]] = []
    for size, each in figures["sizes"].items():
        ours, plain = each["ours"], each["plain"]
        table += [
            (f"{size} orders: two GBK CSVs (订单报表 + 宝贝报表)", f"{each['file_mb']:.1f} MB"),
            (
                f"{size} orders: ours, import (check + write)",
                f"{ours['seconds']:.1f} s ({ours['orders'] / ours['seconds']:.0f} orders/s)",
            ),
            (f"{size} orders: ours, of which checking both files", f"{ours['check_seconds']:.1f} s"),
            (f"{size} orders: ours, CPU time of its process", f"{ours['cpu_seconds']:.1f} s"),
            (f"{size} orders: ours, peak memory over the start", f"{ours['peak_mb']:.0f} MB"),
            (
                f"{size} orders: plain bulk insert",
                f"{plain['seconds']:.1f} s ({plain['orders'] / plain['seconds']:.0f} orders/s)",
            ),
            (f"{size} orders: plain, CPU time of its process", f"{plain['cpu_seconds']:.1f} s"),
            (f"{size} orders: plain, peak memory over the start", f"{plain['peak_mb']:.0f} MB"),
        ]
    biggest = max(figures["sizes"])
    table.append(
        (f"goal: {biggest} orders in < {TARGET_SECONDS} s", _met(figures["sizes"][biggest]["ours"]["seconds"]))
    )
    return table


def _met(seconds: float) -> str:
    return "met" if seconds < TARGET_SECONDS else "**missed**"


def ratio_text(figures: dict[str, Any]) -> str:
    biggest = max(figures["sizes"])
    ours, plain = figures["sizes"][biggest]["ours"], figures["sizes"][biggest]["plain"]
    text = (
        f"at {biggest} orders ours takes {ours['seconds'] / plain['seconds']:.2f}× the plain bulk insert's time "
        f"and {ours['peak_mb'] / max(plain['peak_mb'], 1):.2f}× its peak memory"
    )
    smallest = min(figures["sizes"])
    if smallest != biggest:
        small = figures["sizes"][smallest]["ours"]["peak_mb"]
        text += f"; ours' peak memory at {biggest} is {ours['peak_mb'] / max(small, 1):.2f}× that at {smallest}"
    return text


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    return Entry(benchmark="order_import", setting=setting, ratio=ratio_text(figures), rows=rows(figures))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its rows and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.order_import", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument(
        "--orders", type=int, nargs="+", default=[10_000, 100_000], help="sizes of the order report to import"
    )
    args = parser.parse_args(argv)
    figures = run(args.db, sizes=sorted(args.orders), keep_data=args.keep)
    print_rows(rows(figures))
    print(ratio_text(figures))
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.order_import",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
