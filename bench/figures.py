"""Business figures on a month of orders: the sales report in SQL against a plain fetch-and-sum in Python, and
a task export streamed (write-only XLSX, CSV) against the same workbook built in memory.

A fresh, migrated database gets N orders (1–3 lines each, a refund on every 8th) over 31 days and M tasks,
written with Core bulk inserts. Then, in this one process:
- sales by day and by product over the 31 days (sales.py, GROUP BY in SQL), against fetching every
  counted order and summing GMV per Shanghai day in Python (the baseline);
- the tasks exported as CSV and as XLSX through engine/reports/tabular.py (streamed), against a normal
  openpyxl workbook holding every row before it is saved; time from one run, peak memory (tracemalloc)
  from a second run of the same work, every module already imported.

    cd /work/wt/figures && .venv/bin/python -m bench.figures --db sqlite [--orders 50000] [--tasks 20000] [--record]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import tracemalloc
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness.databases import fresh_database, migrate
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg

ZONE = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
BATCH = 2000


def _seed(url: str, *, orders: int, tasks: int) -> None:
    """Write the catalogue, the orders with lines and refunds, one instance and its tasks, in bulk."""
    from sqlalchemy import insert

    from ecomflow.engine.db.models import HumanTask, ProcessInstance, Product, Variant
    from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, PlatformRefund
    from ecomflow.engine.db.sessions import session_scope

    rng = random.Random(6)
    start = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    with session_scope(url) as session:
        for p in range(20):
            session.execute(insert(Product), [{"code": f"P{p}", "title": f"商品{p}", "category": "c", "brand": "b"}])
        session.execute(
            insert(Variant),
            [
                {"code": f"S{n}", "product_id": n % 20 + 1, "attributes": {}, "list_price": Decimal("9.90")}
                for n in range(100)
            ],
        )
        for base in range(0, orders, BATCH):
            numbers = range(base, min(base + BATCH, orders))
            rows, lines, refunds = [], [], []
            for n in numbers:
                paid_at = start + timedelta(seconds=rng.randrange(31 * 86400))
                amount = Decimal(rng.randrange(1000, 50000)) / 100
                rows.append(
                    {
                        "id": n + 1,
                        "platform": rng.choice(("taobao", "jd")),
                        "order_no": f"O{n}",
                        "shop": rng.choice(("旗舰店", "专营店")),
                        "buyer_nick": f"b{rng.randrange(5000)}",
                        "status": "cancelled" if n % 20 == 0 else "completed",
                        "platform_status": "x",
                        "paid_amount": amount,
                        "ordered_at": paid_at,
                        "paid_at": paid_at,
                        "content_hash": str(n),
                    }
                )
                for line_no in range(1, rng.randrange(2, 5)):
                    lines.append(
                        {
                            "order_id": n + 1,
                            "line_no": line_no,
                            "sku": f"S{rng.randrange(100)}",
                            "title": "t",
                            "quantity": 1,
                            "price": amount / 3,
                        }
                    )
                if n % 8 == 0:
                    refunds.append(
                        {
                            "platform": rows[-1]["platform"],
                            "refund_no": f"R{n}",
                            "order_no": f"O{n}",
                            "sku": None,
                            "kind": "refund_only",
                            "status": "refunded",
                            "platform_status": "x",
                            "amount": amount / 2,
                            "requested_at": paid_at,
                            "completed_at": paid_at + timedelta(hours=30),
                            "content_hash": str(n),
                        }
                    )
            session.execute(insert(PlatformOrder), rows)
            session.execute(insert(PlatformOrderLine), [{**line, "price": round(line["price"], 2)} for line in lines])
            if refunds:
                session.execute(insert(PlatformRefund), refunds)
        session.execute(
            insert(ProcessInstance),
            [
                {
                    "id": "bench-instance",
                    "process_key": "returns_exchange",
                    "definition_version": 1,
                    "business_key": "bench",
                    "state": "running",
                    "params": {},
                    "started_by": "bench",
                }
            ],
        )
        for base in range(0, tasks, BATCH):
            session.execute(
                insert(HumanTask),
                [
                    {
                        "id": f"task-{n:08d}",
                        "instance_id": "bench-instance",
                        "process_key": "returns_exchange",
                        "step_key": f"step-{n}",
                        "kind": "human",
                        "role": "warehouse",
                        "state": "open",
                        "created_at": start + timedelta(seconds=n),
                        "due_at": start + timedelta(days=2, seconds=n),
                    }
                    for n in range(base, min(base + BATCH, tasks))
                ],
            )


def _timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _peak(work: Any) -> tuple[float, float, Any]:
    """Return (seconds untraced, peak MB traced in a second run, result) of the work."""
    seconds, result = _timed(work)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
    tracemalloc.stop()
    return seconds, peak, result


def _plain_by_day(url: str) -> dict[str, Decimal]:
    from sqlalchemy import select

    from ecomflow.engine.db.platform_models import PlatformOrder
    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.reports.sales import counted_orders, day_range

    start, end = day_range(FIRST, LAST, ZONE)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    with read_scope(url) as session:
        for paid_at, amount in session.execute(
            select(PlatformOrder.paid_at, PlatformOrder.paid_amount).where(counted_orders(start, end))
        ):
            totals[paid_at.astimezone(ZONE).date().isoformat()] += amount
    return totals


def _sales(url: str, by: str) -> Any:
    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.reports.sales import SalesBy, sales_report

    with read_scope(url) as session:
        return sales_report(session, first=FIRST, last=LAST, timezone=ZONE.key, by=SalesBy(by))


def _export(url: str, fmt: str) -> int:
    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.reports.exports import TASK_COLUMNS, ListFilter, task_rows
    from ecomflow.engine.reports.tabular import ExportFormat, table_chunks

    boss = Principal(name="boss", roles=frozenset({"owner"}))
    where = ListFilter(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
    size = 0
    with read_scope(url) as session:
        rows = task_rows(session, principal=boss, where=where)
        for chunk in table_chunks(ExportFormat(fmt), "tasks", TASK_COLUMNS, rows, zone=ZONE):
            size += len(chunk)
    return size


def _export_in_memory(url: str) -> int:
    from openpyxl import Workbook

    from ecomflow.engine.db.sessions import read_scope
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.reports.exports import TASK_COLUMNS, ListFilter, task_rows

    boss = Principal(name="boss", roles=frozenset({"owner"}))
    where = ListFilter(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
    book = Workbook()
    sheet = book.active
    sheet.append([c.header for c in TASK_COLUMNS])
    with read_scope(url) as session:
        for row in task_rows(session, principal=boss, where=where):
            sheet.append([v.astimezone(ZONE).replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return len(buffer.getvalue())


def run(db: str, *, orders: int, tasks: int, keep_data: bool = False) -> dict[str, Any]:
    """Seed a fresh database and measure the figures; return them."""
    load_before = loadavg()
    data_dir = make_data_dir("figures")
    try:
        with fresh_database(db, data_dir) as url:
            migrate(url)
            seed_seconds, _ = _timed(lambda: _seed(url, orders=orders, tasks=tasks))
            by_day_s, report = _timed(lambda: _sales(url, "day"))
            plain_s, plain = _timed(lambda: _plain_by_day(url))
            # The same figures both ways, or the comparison means nothing.
            assert {r.key: r.gmv for r in report.rows if r.paid_orders} == {
                k: v.quantize(Decimal("0.01")) for k, v in plain.items()
            }
            by_product_s, _ = _timed(lambda: _sales(url, "product"))
            csv_s, csv_mb, csv_bytes = _peak(lambda: _export(url, "csv"))
            xlsx_s, xlsx_mb, xlsx_bytes = _peak(lambda: _export(url, "xlsx"))
            memory_s, memory_mb, memory_bytes = _peak(lambda: _export_in_memory(url))
        return {
            "load_before": load_before,
            "orders": orders,
            "tasks": tasks,
            "seed_s": seed_seconds,
            "gmv": str(report.total.gmv),
            "by_day_s": by_day_s,
            "plain_s": plain_s,
            "by_product_s": by_product_s,
            "csv": (csv_s, csv_mb, csv_bytes),
            "xlsx": (xlsx_s, xlsx_mb, xlsx_bytes),
            "memory": (memory_s, memory_mb, memory_bytes),
        }
    finally:
        finish_data_dir(data_dir, keep=keep_data)


def rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    def export(name: str) -> str:
        seconds, peak, size = f[name]
        return f"{seconds:.2f} s, peak {peak:.1f} MB traced, file {size / 1024 / 1024:.1f} MB"

    return [
        ("orders over 31 days (seeded in)", f"{f['orders']} ({f['seed_s']:.1f} s), GMV {f['gmv']}"),
        ("sales by day (SQL GROUP BY)", f"{f['by_day_s'] * 1000:.0f} ms"),
        ("baseline: fetch every order, sum per day in Python", f"{f['plain_s'] * 1000:.0f} ms"),
        ("sales by product (line shares in SQL)", f"{f['by_product_s'] * 1000:.0f} ms"),
        (f"tasks export, {f['tasks']} rows, CSV streamed", export("csv")),
        ("tasks export, XLSX streamed (write-only)", export("xlsx")),
        ("baseline: XLSX workbook built in memory", export("memory")),
    ]


def ratio_text(f: dict[str, Any]) -> str:
    return (
        f"sales by day takes {f['by_day_s'] / f['plain_s']:.2f}× the fetch-and-sum's time; the streamed XLSX "
        f"export peaks at {f['xlsx'][1] / max(f['memory'][1], 0.1):.2f}× the in-memory workbook's traced memory"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its rows and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.figures", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args(argv)
    figures = run(args.db, orders=args.orders, tasks=args.tasks, keep_data=args.keep)
    print_rows(rows(figures))
    print(ratio_text(figures))
    if args.record:
        record_run(
            Entry(benchmark="figures", setting=setting_of(args), ratio=ratio_text(figures), rows=rows(figures)),
            module="bench.figures",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
