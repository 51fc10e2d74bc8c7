r"""Waves: N paid platform orders → waves → shipped by a warehouse team of K over the API, on an isolated stack.

The orders are written as an import writes them (a transaction per 200 rows, order_changed per order, the
importer's pause for SQLite's waiting writers between batches, in this process; the last wave's window is
then let pass); waves fill to flows.yaml's max_orders (200)
and start their order_fulfilment at once. K warehouse users then work the waves' tasks over HTTP as
fast as they can: each polls its inbox, claims a task and completes it: 打单 (downloading
waybills.csv), 配货 (pick-list.csv), 验货打包 (all_ok), 发货 (reading GET /waves/{id} for the
packed orders and sending a tracking number for each), until every order has shipped. Figures: waves
made, Prefect flow runs created, CPU seconds per order shipped (the stack's worker, Prefect server and
API, plus this process's import), and the wall time for the team.
At 100,000 orders the figures are extrapolated linearly (waves and runs scale with N / max_orders).

    cd /work/wt/waves && .venv/bin/python -m bench.waves --db sqlite --orders 2000 --staff 4 [--record]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from bench.harness.options import add_common_options, env_overrides, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_report
from bench.harness.stack import BenchStack, run_on_stack

SKUS = ("BENCH-TEE-M", "BENCH-CAP")
TARGET_ORDERS = 100_000
BATCH = 200


def _import_orders(stack: BenchStack, count: int) -> dict[str, float]:
    """Write `count` paid Tmall orders as an import does; return the CPU and wall seconds it took here."""
    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.intake.importer import let_writers_in
    from ecomflow.engine.intake.waves import close_due_waves, order_changed
    from ecomflow.engine.shop.catalog import seed_sku

    with session_scope(stack.database_url) as session:
        for sku in SKUS:
            seed_sku(session, sku=sku, title=sku, list_price="99", stock=count * 3)
    cpu, wall = time.process_time(), time.monotonic()
    prefix = uuid.uuid4().hex[:6]
    for start in range(0, count, BATCH):
        with session_scope(stack.database_url) as session:
            for number in range(start, min(start + BATCH, count)):
                order = PlatformOrder(
                    platform="tmall",
                    order_no=f"B{prefix}{number:07d}",
                    status="paid",
                    platform_status="买家已付款，等待卖家发货",
                    paid_amount=Decimal("287.00"),
                    ordered_at=utcnow(),
                    paid_at=utcnow(),
                    receiver_name="张*",
                    receiver_phone="138****5678",
                    address="上海市 浦东新区 世纪大道100号",
                    content_hash=uuid.uuid4().hex,
                )
                session.add(order)
                session.flush()
                session.add(
                    PlatformOrderLine(
                        order_id=order.id, line_no=1, sku=SKUS[0], title="T恤", quantity=1, price=Decimal(99)
                    )
                )
                session.add(
                    PlatformOrderLine(
                        order_id=order.id, line_no=2, sku=SKUS[1], title="帽", quantity=2, price=Decimal(94)
                    )
                )
                session.flush()
                order_changed(session, order, before=None, actor="import:bench")
        let_writers_in(stack.database_url)  # as the importer does between batches
    # The last, partly filled wave closes when its window passes: let it pass now (the sweeper's work).
    with session_scope(stack.database_url) as session:
        close_due_waves(session, now=utcnow() + get_definitions().wave.window)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.monotonic() - wall}


def _form(staff: Any, task: dict[str, Any]) -> dict[str, Any]:
    """Return the data a warehouse worker enters for the task, downloading the files its step works from."""
    detail = staff.http.get(f"/tasks/{task['id']}").json()
    context = detail["context"]
    wave_id = context["wave_id"]
    if task["step"] == "print_waybills":
        staff.http.get(f"/waves/{wave_id}/waybills.csv").raise_for_status()
        return {"carrier": "中通快递"}
    if task["step"] == "pick":
        staff.http.get(f"/waves/{wave_id}/pick-list.csv").raise_for_status()
        return {"pick_list_no": f"P-{wave_id}"}
    if task["step"] == "check_and_pack":
        return {"all_ok": True}
    orders = staff.http.get(f"/waves/{wave_id}").json()["orders"]
    return {
        "shipments": [
            {"order_no": o["order_no"], "carrier": "中通快递", "tracking_no": f"ZT{o['order_no']}"}
            for o in orders
            if o["fulfilment_state"] == "packed"
        ]
    }


def _work(staff: Any, done: threading.Event, counts: dict[str, int], errors: list[str]) -> None:
    """One warehouse worker: take the oldest open task of the role, do it; until every order shipped."""
    while not done.is_set():
        try:
            tasks = staff.open_tasks(sort="created", limit=20)
            if not tasks:
                time.sleep(0.2)
                continue
            for task in tasks:
                if staff.http.post(f"/tasks/{task['id']}/claim").status_code != 200:
                    continue  # a colleague took it first
                response = staff.http.post(f"/tasks/{task['id']}/complete", json={"data": _form(staff, task)})
                if response.status_code != 200:
                    errors.append(f"{task['step']}: {response.status_code} {response.text[:200]}")
                counts[task["step"]] = counts.get(task["step"], 0) + 1
                break
        except Exception as exc:  # recorded and reported: one failed call must not hide in a thread
            errors.append(repr(exc))
            time.sleep(0.5)


def _shipped(stack: BenchStack) -> int:
    from sqlalchemy import func, select

    from ecomflow.engine.db.platform_models import PlatformOrder
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(stack.database_url) as session:
        return session.scalar(
            select(func.count()).select_from(PlatformOrder).where(PlatformOrder.fulfilment_state == "shipped")
        )


def _waves(stack: BenchStack) -> int:
    from sqlalchemy import func, select

    from ecomflow.engine.db.platform_models import Wave
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(Wave))


def drive(stack: BenchStack, *, orders: int, staff: int, timeout_s: float) -> dict[str, Any]:
    """Import the orders, let the team ship every wave, return the figures."""
    cpu_before = stack.cpu_seconds()
    started = time.monotonic()
    imported = _import_orders(stack, orders)
    team = [stack.staff(f"wh{n}") for n in range(1, staff + 1)]
    done, counts, errors = threading.Event(), {}, []
    threads = [threading.Thread(target=_work, args=(person, done, counts, errors), daemon=True) for person in team]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    shipped = 0
    while time.monotonic() < deadline:
        shipped = _shipped(stack)
        if shipped >= orders:
            break
        time.sleep(1)
    elapsed = time.monotonic() - started
    done.set()
    for thread in threads:
        thread.join(timeout=30)
    for person in team:
        person.close()
    cpu_after = stack.cpu_seconds()
    stack_cpu = {name: round(cpu_after[name] - cpu_before[name], 1) for name in cpu_after}
    total_cpu = sum(stack_cpu.values()) + imported["cpu_s"]
    runs = stack.prefect_count(
        ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "CRASHED"],
        flow_name="order_fulfilment",
    )
    return {
        "orders": orders,
        "staff": staff,
        "shipped": shipped,
        "waves": _waves(stack),
        "prefect_runs": runs,
        "steps_done": counts,
        "errors": errors[:10],
        "error_count": len(errors),
        "import_cpu_s": round(imported["cpu_s"], 1),
        "import_wall_s": round(imported["wall_s"], 1),
        "stack_cpu_s": stack_cpu,
        "cpu_s_per_order": total_cpu / max(shipped, 1),
        "wall_s": round(elapsed, 1),
    }


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows, measured and extrapolated (labelled)."""
    scale = TARGET_ORDERS / figures["orders"]
    cpu = figures["stack_cpu_s"]
    return [
        ("orders imported / shipped", f"{figures['orders']} / {figures['shipped']}"),
        ("waves made", str(figures["waves"])),
        ("Prefect flow runs created (order_fulfilment)", str(figures["prefect_runs"])),
        ("warehouse steps done (by step)", ", ".join(f"{k} {v}" for k, v in sorted(figures["steps_done"].items()))),
        ("CPU-s per order shipped, end to end", f"{figures['cpu_s_per_order']:.4f}"),
        (
            "CPU-s: import (this process) / worker / prefect / api",
            f"{figures['import_cpu_s']} / {cpu['worker']} / {cpu['prefect']} / {cpu['api']}",
        ),
        (f"wall time, import to the last order shipped, team of {figures['staff']}", f"{figures['wall_s']} s"),
        ("import wall time", f"{figures['import_wall_s']} s"),
        ("errors seen by the team", str(figures["error_count"])),
        (
            f"extrapolated (linear, not measured) to {TARGET_ORDERS:,} orders: waves / Prefect runs",
            f"{figures['waves'] * scale:.0f} / {figures['prefect_runs'] * scale:.0f}",
        ),
        (
            f"extrapolated (linear, not measured) to {TARGET_ORDERS:,} orders: CPU-s / wall time",
            f"{figures['cpu_s_per_order'] * TARGET_ORDERS:.0f} CPU-s / {figures['wall_s'] * scale / 3600:.1f} h",
        ),
    ]


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run."""
    return Entry(
        benchmark="waves",
        setting=f"{setting}, {figures['orders']} orders, {figures['staff']} warehouse staff",
        ratio=(
            f"{figures['orders']} orders made {figures['waves']} waves and {figures['prefect_runs']} Prefect runs "
            f"(one run per order would be {figures['orders']})"
        ),
        rows=table(figures),
        notes=[f"first errors: {figures['errors']}"] if figures["errors"] else [],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its figures and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.waves", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--orders", type=int, default=2000, help="paid orders to import and ship")
    parser.add_argument("--staff", type=int, default=4, help="warehouse users working the waves at once")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    args = parser.parse_args(argv)
    users = {f"wh{n}": ("warehouse",) for n in range(1, args.staff + 1)}
    figures = run_on_stack(
        lambda stack: drive(stack, orders=args.orders, staff=args.staff, timeout_s=args.timeout),
        args.db,
        prefect_db=args.prefect_db,
        users=users,
        env=env_overrides(args) or None,
        keep_data=args.keep,
    )
    print_report(table(figures), figures)
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.waves",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
