"""Waiting memory: what do N returns waiting on a person cost the worker and the Prefect server?

Starts a fresh stack, measures memory (VmRSS and PSS summed over each process group) of the
worker, the Prefect server and the API plus the database sizes at a baseline of 0 waiting,
then starts N returns over HTTP and waits until every one has its cs_review task open in the
inbox and its Prefect flow run is suspended (PAUSED), and measures the same again.

    cd /work/main && /work/venv/bin/python -m bench.waiting_memory --db sqlite --n 100
"""
from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime
from typing import Any

import httpx

from ecomflow.sample_data import return_params
from bench.stack import (
    closing_rows, BenchStack, loadavg, add_common_options, append_results, cpu_seconds, isolated_stack, print_report, report_notes,
    summarize,
)

USERS = {"cs": ("customer_service",)}


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def start_breakdown(stack: BenchStack, instance_ids: list[str]) -> dict[str, dict[str, float]]:
    """Split 201 → first task into its parts, from our DB (outbox, tasks) and Prefect's state history.

    start delivered: the start_run outbox row was written (in the POST) → delivered (the flow run exists)
    created → picked up: the run's first Scheduled state → Pending (the worker took it)
    picked up → Running, Running → cs_review task row written, task row → run suspended (Paused)
    """
    from sqlalchemy import select

    from engine.db import session_scope
    from engine.models import HumanTask, OutboxMessage, ProcessInstance

    parts: dict[str, list[float]] = {}
    with session_scope(stack.database_url) as session:
        for instance_id in instance_ids:
            instance = session.get(ProcessInstance, instance_id)
            message = session.scalar(select(OutboxMessage).where(
                OutboxMessage.instance_id == instance_id, OutboxMessage.kind == "start_run"))
            task = session.scalar(select(HumanTask).where(
                HumanTask.instance_id == instance_id, HumanTask.step_key == "cs_review"))
            response = httpx.get(f"{stack.prefect_api}/flow_run_states/", params={"flow_run_id": instance.flow_run_id}, timeout=30)
            response.raise_for_status()
            first = {}
            for state in sorted(response.json(), key=lambda st: st["timestamp"]):
                first.setdefault(state["type"], _parse(state["timestamp"]))
            if message is None or message.delivered_at is None or task is None or not {"SCHEDULED", "PENDING", "RUNNING", "PAUSED"} <= set(first):
                continue
            for label, later, earlier in (
                ("POST → start delivered (flow run created)", message.delivered_at, message.created_at),
                ("flow run created → picked up (Pending)", first["PENDING"], first["SCHEDULED"]),
                ("picked up → Running", first["RUNNING"], first["PENDING"]),
                ("Running → cs_review task row written", task.created_at, first["RUNNING"]),
                ("task row written → run Suspended", first["PAUSED"], task.created_at),
            ):
                parts.setdefault(label, []).append((later - earlier).total_seconds())
    return {label: summarize(values) for label, values in parts.items()}


def _snapshot(stack: BenchStack) -> dict[str, Any]:
    return {
        "memory": stack.memory(),
        "db_bytes": stack.db_size_bytes(),
        "sqlite_main_file_bytes": stack.sqlite_main_file_bytes(),
        "prefect_db_bytes": stack.prefect_db_size_bytes(),
        "cpu_s": {name: cpu_seconds(s.process.pid) for name, s in stack.services().items()},
    }


def drive(stack: BenchStack, *, n: int, settle_s: float = 5.0, timeout: float = 240, poll: float = 0.2) -> dict[str, Any]:
    """Measure the baseline, start n returns, wait for all to wait on cs_review, measure again."""
    cs = stack.staff("cs")
    try:
        time.sleep(settle_s)  # let start-up work (deployment registration, first polls) finish
        baseline = _snapshot(stack)

        created_at: dict[str, float] = {}
        started = time.monotonic()
        for _ in range(n):
            created = cs.start_return(return_params(), business_key=f"BENCH-{uuid.uuid4().hex[:8]}")
            created_at[created["id"]] = time.monotonic()
        posts_s = time.monotonic() - started

        first_task_at: dict[str, float] = {}
        deadline = started + timeout
        while len(first_task_at) < n:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"only {len(first_task_at)} of {n} returns reached cs_review within {timeout:.0f}s")
            for task in cs.all_open_tasks(process="returns_exchange"):
                if task["step"] == "cs_review" and task["instance_id"] in created_at:
                    first_task_at.setdefault(task["instance_id"], now)
            stack.check_alive()
            time.sleep(poll)
        all_tasks_s = max(first_task_at.values()) - started

        def paused() -> int:
            return stack.prefect_count(["PAUSED"], flow_name="returns_exchange")

        while (count := paused()) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {count} of {n} flow runs suspended within {timeout:.0f}s")
            time.sleep(poll)
        all_paused_s = time.monotonic() - started
        time.sleep(settle_s)
        waiting = _snapshot(stack)
        not_suspended = stack.prefect_count(["RUNNING", "PENDING", "SCHEDULED"], flow_name="returns_exchange")
        return {
            "n": n,
            "posts_s": round(posts_s, 2),
            "all_first_tasks_s": round(all_tasks_s, 2),
            "all_suspended_s": round(all_paused_s, 2),
            "first_task_latency": summarize([first_task_at[i] - created_at[i] for i in created_at]),
            "baseline": baseline,
            "waiting": waiting,
            "runs_paused": paused(),
            "runs_not_suspended": not_suspended,
            "breakdown": start_breakdown(stack, list(created_at)),
        }
    finally:
        cs.close()


def run(db: str = "sqlite", n: int = 100, *, env: dict[str, str] | None = None, keep_data: bool = False,
        settle_s: float = 5.0, timeout: float = 240, prefect_db: str = "sqlite") -> dict[str, Any]:
    """Start an isolated stack, measure, stop it; return the figures."""
    load_before = loadavg()
    with isolated_stack(db, users=USERS, env=env, keep_data=keep_data, prefect_db=prefect_db) as stack:
        figures = drive(stack, n=n, settle_s=settle_s, timeout=timeout)
        figures["startup"] = dict(stack.timings)
        figures["settings"] = stack.effective_settings()
    figures["db"] = db
    figures["prefect_db"] = prefect_db
    figures["load_before"] = load_before
    figures["logs"] = {name: {k: report[k] for k in ("errors", "warnings")} for name, report in stack.log_report.items()}
    figures["first_errors"] = {name: r["first_error_context"] for name, r in stack.log_report.items() if r["first_error_context"]}
    figures["data_dir"] = str(stack.data_dir)
    figures["log_samples"] = {name: report["samples"] for name, report in stack.log_report.items() if report["samples"]}
    return figures


def _mb(value: int | None) -> str:
    return "—" if value is None else f"{value / 1024 / 1024:.2f} MB"


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    n, base, wait = figures["n"], figures["baseline"], figures["waiting"]
    rows: list[tuple[str, str]] = [("", f"0 waiting → {n} waiting")]
    for name, label in (("worker", "worker"), ("prefect", "Prefect server"), ("api", "API")):
        b, w = base["memory"][name], wait["memory"][name]
        delta = w["rss_mb"] - b["rss_mb"]
        rows.append((
            f"{label} RSS (sum over {w['pids']} process(es))",
            f"{b['rss_mb']:.1f} MB → {w['rss_mb']:.1f} MB (+{delta:.1f} MB, {delta * 1024 / n:.0f} kB per waiting return)",
        ))
        rows.append((f"{label} PSS", f"{b['pss_mb']:.1f} MB → {w['pss_mb']:.1f} MB"))
        if name == "worker":
            rows.append(("worker threads", f"{b['threads']} → {w['threads']}"))
    db_label = "SQLite file + WAL" if figures["db"] == "sqlite" else "pg_database_size"
    rows.append((f"ecomflow DB size ({db_label})", f"{_mb(base['db_bytes'])} → {_mb(wait['db_bytes'])}"))
    if figures["db"] == "sqlite":
        rows.append(("ecomflow SQLite main file", f"{_mb(base['sqlite_main_file_bytes'])} → {_mb(wait['sqlite_main_file_bytes'])}"))
    prefect_label = "SQLite prefect.db + WAL" if figures["prefect_db"] == "sqlite" else "pg_database_size"
    rows.append((f"Prefect server DB size ({prefect_label})", f"{_mb(base['prefect_db_bytes'])} → {_mb(wait['prefect_db_bytes'])}"))
    rows += [
        (f"time to POST {n} returns (sequential)", f"{figures['posts_s']} s"),
        (f"first POST → all {n} cs_review tasks in inbox", f"{figures['all_first_tasks_s']} s"),
        (f"first POST → all {n} flow runs suspended (PAUSED)", f"{figures['all_suspended_s']} s"),
        ("per return: 201 → its cs_review in inbox", (
            f"p50 {figures['first_task_latency']['p50_s']:.2f} s · p95 {figures['first_task_latency']['p95_s']:.2f} s "
            f"· max {figures['first_task_latency']['max_s']:.2f} s")),
        *[(f"  part: {label}", f"p50 {v['p50_s']:.2f} s · p95 {v['p95_s']:.2f} s · max {v['max_s']:.2f} s (n={v['n']})")
          for label, v in figures["breakdown"].items()],
        ("Prefect runs PAUSED / still running-pending-scheduled", f"{figures['runs_paused']} / {figures['runs_not_suspended']}"),
        ("CPU-s from baseline to measured: worker / prefect / api", " / ".join(
            f"{wait['cpu_s'][k] - base['cpu_s'][k]:.1f}" for k in ("worker", "prefect", "api"))),
        *closing_rows(figures),
    ]
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.waiting_memory", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--n", type=int, default=100, help="returns to leave waiting on cs_review")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to let things settle before each measurement")
    parser.add_argument("--timeout", type=float, default=240, help="seconds allowed for all N to suspend")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    figures = run(args.db, args.n, env=env or None, keep_data=args.keep, prefect_db=args.prefect_db, settle_s=args.settle, timeout=args.timeout)
    rows = table(figures)
    print_report(rows, figures)
    if not args.no_record:
        append_results("Waiting memory", db=args.db if args.prefect_db == "sqlite" else f"{args.db}, Prefect on postgresql", rows=rows, notes=report_notes(figures, env), load_before=figures["load_before"], prefect_db=args.prefect_db)
    return figures


if __name__ == "__main__":
    main()
