"""The signed push of refunds: a batch of 1,000 events, each starting a returns case, against the file import.

Each measurement runs in a fresh process on a fresh, migrated database, with the same refund records:
- push: what POST /inbound/{source}/events does past HTTP (verify the HMAC signature, check the JSON body
  field by field, then the delivery row, the ImportRun, ingest.apply and each refund's case, one transaction
  per batch);
- import: the same records handed to ingest.apply directly, as a file import does once its rows are mapped.
Both start one returns_exchange instance per refund (params, audit event, outbox message); no Prefect runs.

    cd /work/main && .venv/bin/python -m bench.inbound_push --db sqlite [--batches 5] [--events 1000] [--record]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness.databases import fresh_database, migrate
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg

SECRET = "bench-secret"


def batch_body(batch: int, events: int) -> bytes:
    """Return one pushed batch of refund requests (Chinese wording, a mix of kinds)."""
    kinds = ("refund_only", "return_refund", "exchange")
    return json.dumps(
        {
            "platform": "tmall",
            "kind": "refunds",
            "events": [
                {
                    "refund_no": f"TB-R-{batch:03d}-{n:05d}",
                    "order_no": f"34{batch:03d}{n:014d}",
                    "kind": kinds[n % 3],
                    "status": "requested",
                    "platform_status": "买家已经申请退款，等待卖家同意",
                    "amount": f"{59 + n % 200}.00",
                    "requested_at": "2026-12-05T10:15:00+08:00",
                    "sku": f"TEE-{n % 50:03d}",
                    "reason": "质量问题" if n % 4 == 0 else "七天无理由退换货",
                }
                for n in range(events)
            ],
        },
        ensure_ascii=False,
    ).encode()


def _push(url: str, bodies: list[bytes]) -> dict[str, Any]:
    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.intake.push import receive, sign, verify
    from ecomflow.engine.intake.push_events import parse_batch

    started = time.perf_counter()
    for number, body in enumerate(bodies):
        stamp = str(int(time.time()))
        signature = sign(SECRET, stamp, body)
        verify(secret=SECRET, source="erp", timestamp=stamp, signature=signature, body=body, now=utcnow(),
               window_seconds=300)  # fmt: skip
        batch = parse_batch(body)
        with session_scope(url) as session:
            receive(session, source="erp", delivery_id=f"d-{number}", batch=batch)
    return {"seconds": time.perf_counter() - started, **_counts(url)}


def _import(url: str, bodies: list[bytes]) -> dict[str, Any]:
    from ecomflow.engine.db.platform_models import ImportRun
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.intake import ingest
    from ecomflow.engine.intake.push_events import parse_batch

    batches = [parse_batch(body) for body in bodies]  # the mapped rows a file import hands on
    started = time.perf_counter()
    for batch in batches:
        with session_scope(url) as session:
            run = ImportRun(kind="refunds", platform="tmall", source="file:bench.csv", actor="bench")
            ingest.apply(session, "refunds", batch.records, actor="bench", run=run)
            ingest.finish(session, run, actor="bench")
    return {"seconds": time.perf_counter() - started, **_counts(url)}


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from ecomflow.engine.db.models import ProcessInstance
    from ecomflow.engine.db.platform_models import PlatformRefund
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(url) as session:
        return {
            "refunds": session.scalar(select(func.count()).select_from(PlatformRefund)),
            "cases": session.scalar(select(func.count()).select_from(ProcessInstance)),
        }


def _child(kind: str, url: str, bodies: list[bytes], queue: Any) -> None:
    import os

    os.environ["ECOMFLOW_DATABASE_URL"] = url
    queue.put((_push if kind == "push" else _import)(url, bodies))


def _measure(kind: str, db: str, data_dir: Path, bodies: list[bytes]) -> dict[str, Any]:
    directory = data_dir / kind
    directory.mkdir()
    with fresh_database(db, directory) as url:
        migrate(url)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        process = context.Process(target=_child, args=(kind, url, bodies, queue))
        process.start()
        result = queue.get()
        process.join()
        return result


def run(db: str, *, batches: int, events: int, keep_data: bool = False) -> dict[str, Any]:
    load_before = loadavg()
    data_dir = make_data_dir("inbound-push")
    try:
        bodies = [batch_body(number, events) for number in range(batches)]
        figures = {
            "load_before": load_before,
            "batches": batches,
            "events": events,
            "body_kb": len(bodies[0]) / 1024,
            "push": _measure("push", db, data_dir, bodies),
            "import": _measure("import", db, data_dir, bodies),
        }
    finally:
        finish_data_dir(data_dir, keep=keep_data)
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    push, imported = figures["push"], figures["import"]
    total = figures["batches"] * figures["events"]
    return [
        ("batches × events", f"{figures['batches']} × {figures['events']} ({figures['body_kb']:.0f} KB a batch)"),
        ("push: signed, checked, written", f"{push['seconds']:.1f} s ({total / push['seconds']:.0f} refunds/s)"),
        ("push: refunds, cases started", f"{push['refunds']}, {push['cases']}"),
        ("import: ingest.apply alone", f"{imported['seconds']:.1f} s ({total / imported['seconds']:.0f} refunds/s)"),
        ("import: refunds, cases started", f"{imported['refunds']}, {imported['cases']}"),
    ]


def ratio_text(figures: dict[str, Any]) -> str:
    return f"the push takes {figures['push']['seconds'] / figures['import']['seconds']:.2f}× the import's time"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.inbound_push", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument("--batches", type=int, default=5, help="pushed batches")
    parser.add_argument("--events", type=int, default=1000, help="refund events per batch")
    args = parser.parse_args(argv)
    figures = run(args.db, batches=args.batches, events=args.events, keep_data=args.keep)
    print_rows(rows(figures))
    print(ratio_text(figures))
    if args.record:
        entry = Entry(benchmark="inbound_push", setting=setting_of(args), ratio=ratio_text(figures), rows=rows(figures))
        record_run(entry, module="bench.inbound_push", argv=argv, load_before=figures["load_before"])
    return figures


if __name__ == "__main__":
    main()
