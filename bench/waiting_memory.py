"""Waiting memory: what do N returns waiting on a person cost the worker and the Prefect server?

Starts a fresh stack, measures memory (VmRSS and PSS summed over each process group) of the
worker, the Prefect server and the API plus the database sizes at a baseline of 0 waiting,
then starts N returns over HTTP and waits until every one has its cs_review task open in the
inbox and its Prefect flow run is suspended (PAUSED), and measures the same again. Its baseline
is the smallest checkpoint: the goal is memory at the largest within 20 % of it.

    cd /work/main && .venv/bin/python -m bench.waiting_memory --db sqlite --n 100 --n 1000 --n 10000 [--record]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.harness.logs import log_counts_text
from bench.harness.options import add_common_options, env_overrides, setting_of
from bench.harness.prefect_api import flow_run_states
from bench.harness.recording import Entry, record_run
from bench.harness.report import closing_rows, print_report
from bench.harness.stack import BenchStack, run_on_stack
from bench.harness.timing import format_summary, summarize
from ecomflow.sample_data import return_params

USERS = {"cs": ("customer_service",)}
GOAL_GROWTH = 0.20  # memory at the largest checkpoint within 20 % of the smallest


def start_breakdown(stack: BenchStack, instance_ids: list[str]) -> dict[str, dict[str, float]]:
    """Split 201 → first task into its parts, from our DB (outbox, tasks) and Prefect's state history.

    start delivered: the start_run outbox row was written (in the POST) → delivered (the flow run exists)
    created → picked up: the run's first Scheduled state → taken by the worker (Running, or Pending on a
    server without ecomflow's take rule)
    picked up → Running, Running → cs_review task row written, task row → run suspended (Paused)
    """
    from sqlalchemy import select

    from ecomflow.engine.db.models import HumanTask, OutboxMessage, ProcessInstance
    from ecomflow.engine.db.sessions import session_scope

    parts: dict[str, list[float]] = {}
    with session_scope(stack.database_url) as session:
        for instance_id in instance_ids:
            instance = session.get(ProcessInstance, instance_id)
            message = session.scalar(
                select(OutboxMessage).where(OutboxMessage.instance_id == instance_id, OutboxMessage.kind == "start_run")
            )
            task = session.scalar(
                select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.step_key == "cs_review")
            )
            first: dict[str, datetime] = {}
            for at, kind, _ in flow_run_states(stack.prefect_api, instance.flow_run_id):
                first.setdefault(kind, at)
            if (
                message is None
                or message.delivered_at is None
                or task is None
                or not {"SCHEDULED", "RUNNING", "PAUSED"} <= set(first)
            ):
                continue
            taken = first.get("PENDING", first["RUNNING"])
            for label, later, earlier in (
                ("POST → start delivered (flow run created)", message.delivered_at, message.created_at),
                ("flow run created → taken by the worker", taken, first["SCHEDULED"]),
                ("taken → Running", first["RUNNING"], taken),
                ("Running → cs_review task row written", task.created_at, first["RUNNING"]),
                ("task row written → run Suspended", first["PAUSED"], task.created_at),
            ):
                parts.setdefault(label, []).append((later - earlier).total_seconds())
    return {label: summarize(values) for label, values in parts.items()}


def _snapshot(stack: BenchStack) -> dict[str, Any]:
    """Return memory, database sizes and CPU seconds of the stack now."""
    return {
        "memory": stack.memory(),
        "db_bytes": stack.db_size_bytes(),
        "sqlite_main_file_bytes": stack.sqlite_main_file_bytes(),
        "prefect_db_bytes": stack.prefect_db_size_bytes(),
        "cpu_s": stack.cpu_seconds(),
    }


def _start_returns(cs: Any, count: int) -> dict[str, datetime]:
    """POST count returns one after another; return each instance's id with the time of its 201."""
    posted: dict[str, datetime] = {}
    for _ in range(count):
        created = cs.start_return(return_params(), business_key=f"BENCH-{uuid.uuid4().hex[:8]}")
        posted[created["id"]] = datetime.now(UTC)
    return posted


def _first_tasks(stack: BenchStack) -> dict[str, datetime]:
    """Return, from our database, when each instance's cs_review task was written."""
    from sqlalchemy import select

    from ecomflow.engine.db.models import HumanTask
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(stack.database_url) as session:
        rows = session.execute(
            select(HumanTask.instance_id, HumanTask.created_at).where(HumanTask.step_key == "cs_review")
        )
        return {instance_id: created.replace(tzinfo=created.tzinfo or UTC) for instance_id, created in rows}


def _count_first_tasks(stack: BenchStack) -> int:
    """Count the cs_review tasks written so far (polled while waiting: a count, not 10,000 rows a second)."""
    from sqlalchemy import func, select

    from ecomflow.engine.db.models import HumanTask
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.step_key == "cs_review"))


def _wait_until_all_wait(
    stack: BenchStack, posted: dict[str, datetime], *, deadline: float, poll: float
) -> dict[str, float]:
    """Wait until every posted return has its cs_review task and a PAUSED run; return the elapsed times."""
    started, n = time.monotonic(), len(posted)
    while (written := _count_first_tasks(stack)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {written} of {n} returns reached cs_review in time")
        stack.check_alive()
        time.sleep(poll)
    all_tasks_s = time.monotonic() - started
    while (count := stack.prefect_count(["PAUSED"], flow_name="returns_exchange")) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count} of {n} flow runs suspended in time")
        time.sleep(poll)
    return {"all_first_tasks_s": round(all_tasks_s, 2), "all_suspended_s": round(time.monotonic() - started, 2)}


def drive(
    stack: BenchStack,
    *,
    checkpoints: list[int],
    settle_s: float = 5.0,
    timeout: float = 240,
    poll: float = 1.0,
    breakdown_sample: int = 200,
) -> dict[str, Any]:
    """Measure the baseline, then start returns up to each checkpoint, wait until all wait on cs_review, measure."""
    cs = stack.staff("cs")
    try:
        time.sleep(settle_s)  # let start-up work (deployment registration, first polls) finish
        baseline = _snapshot(stack)
        posted: dict[str, datetime] = {}
        measured = []
        for target in checkpoints:
            deadline = time.monotonic() + timeout
            started = time.monotonic()
            new = _start_returns(cs, target - len(posted))
            posts_s = time.monotonic() - started
            posted.update(new)
            waits = _wait_until_all_wait(stack, posted, deadline=deadline, poll=poll)
            time.sleep(settle_s)
            tasks = _first_tasks(stack)
            measured.append(
                {
                    "n": target,
                    "started_now": len(new),
                    "posts_s": round(posts_s, 2),
                    **{key: round(value + posts_s, 2) for key, value in waits.items()},
                    "first_task_latency": summarize([(tasks[i] - new[i]).total_seconds() for i in new]),
                    "snapshot": _snapshot(stack),
                    "runs_paused": stack.prefect_count(["PAUSED"], flow_name="returns_exchange"),
                    "runs_not_suspended": stack.prefect_count(
                        ["RUNNING", "PENDING", "SCHEDULED"], flow_name="returns_exchange"
                    ),
                }
            )
        # Prefect's state history is read per run: a sample of the last checkpoint's starts is enough.
        sample = list(posted)[-breakdown_sample:]
        return {
            "checkpoints": measured,
            "baseline": baseline,
            "breakdown": start_breakdown(stack, sample),
            "breakdown_n": len(sample),
        }
    finally:
        cs.close()


def run(
    db: str = "sqlite",
    checkpoints: list[int] | None = None,
    *,
    env: dict[str, str] | None = None,
    keep_data: bool = False,
    settle_s: float = 5.0,
    timeout: float = 240,
    prefect_db: str = "sqlite",
) -> dict[str, Any]:
    """Start an isolated stack, measure, stop it; return the figures."""
    return run_on_stack(
        lambda stack: drive(stack, checkpoints=checkpoints or [100], settle_s=settle_s, timeout=timeout),
        db,
        prefect_db=prefect_db,
        users=USERS,
        env=env,
        keep_data=keep_data,
    )


def _mb(value: int | None) -> str:
    """Return bytes as MB with two decimals, or '—'."""
    return "—" if value is None else f"{value / 1024 / 1024:.2f} MB"


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows: each figure at the baseline and at every checkpoint."""
    base, points = figures["baseline"], figures["checkpoints"]
    first = points[0]

    def across(value_of) -> str:
        return " → ".join(value_of(point["snapshot"]) for point in points)

    rows: list[tuple[str, str]] = [("waiting returns", "0 → " + " → ".join(str(p["n"]) for p in points))]
    for name, label in (("worker", "worker"), ("prefect", "Prefect server"), ("api", "API")):
        rss = [base["memory"][name]["rss_mb"]] + [p["snapshot"]["memory"][name]["rss_mb"] for p in points]
        rows.append((f"{label} RSS", " → ".join(f"{v:.0f} MB" for v in rss)))
        last, at_first = rss[-1], rss[1]
        rows.append(
            (f"{label} RSS at {points[-1]['n']} vs at {first['n']} waiting", f"{(last / at_first - 1) * 100:+.0f} %")
        )
        rows.append(
            (
                f"{label} PSS",
                f"{base['memory'][name]['pss_mb']:.0f} MB → "
                + across(lambda s, n=name: f"{s['memory'][n]['pss_mb']:.0f} MB"),
            )
        )
        if name == "worker":
            rows.append(
                (
                    "worker threads",
                    f"{base['memory'][name]['threads']} → " + across(lambda s: str(s["memory"]["worker"]["threads"])),
                )
            )
    db_label = "SQLite file + WAL" if figures["db"] == "sqlite" else "pg_database_size"
    rows.append(
        (f"ecomflow DB size ({db_label})", f"{_mb(base['db_bytes'])} → " + across(lambda s: _mb(s["db_bytes"])))
    )
    if figures["db"] == "sqlite":
        rows.append(
            (
                "ecomflow SQLite main file",
                f"{_mb(base['sqlite_main_file_bytes'])} → " + across(lambda s: _mb(s["sqlite_main_file_bytes"])),
            )
        )
    prefect_label = "SQLite prefect.db + WAL" if figures["prefect_db"] == "sqlite" else "pg_database_size"
    rows.append(
        (
            f"Prefect server DB size ({prefect_label})",
            f"{_mb(base['prefect_db_bytes'])} → " + across(lambda s: _mb(s["prefect_db_bytes"])),
        )
    )
    for point in points:
        latency = point["first_task_latency"]
        rows += [
            (f"to {point['n']}: POST {point['started_now']} more returns (one after another)", f"{point['posts_s']} s"),
            (
                f"to {point['n']}: first of those POSTs → all cs_review tasks written / all runs PAUSED",
                f"{point['all_first_tasks_s']} s / {point['all_suspended_s']} s "
                f"({point['started_now'] / point['all_suspended_s']:.1f} starts/s)",
            ),
            (
                f"to {point['n']}: per return, 201 → cs_review written",
                format_summary(latency, unit="s", keys=("p50", "p95", "max"), digits=2),
            ),
            (
                f"to {point['n']}: Prefect runs PAUSED / still running-pending-scheduled",
                f"{point['runs_paused']} / {point['runs_not_suspended']}",
            ),
        ]
    rows += [
        *[
            (
                f"start part (last {figures['breakdown_n']} starts): {label}",
                format_summary(v, unit="s", keys=("p50", "p95", "max"), digits=2),
            )
            for label, v in figures["breakdown"].items()
        ],
        (
            "CPU-s from baseline to the last checkpoint: worker / prefect / api",
            " / ".join(
                f"{points[-1]['snapshot']['cpu_s'][k] - base['cpu_s'][k]:.1f}" for k in ("worker", "prefect", "api")
            ),
        ),
        *closing_rows(figures),
    ]
    return rows


def growth(figures: dict[str, Any], name: str) -> float:
    """Return how much a process group's RSS grew from the first checkpoint (the baseline with only one) to the last."""
    points = figures["checkpoints"]
    first = points[0]["snapshot"] if len(points) > 1 else figures["baseline"]
    return points[-1]["snapshot"]["memory"][name]["rss_mb"] / first["memory"][name]["rss_mb"] - 1


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run: memory at each checkpoint, and the growth against the goal."""
    base, points = figures["baseline"], figures["checkpoints"]
    first_n = points[0]["n"] if len(points) > 1 else 0
    labels = {"worker": "worker", "prefect": "Prefect server", "api": "API"}
    growths = {label: growth(figures, name) for name, label in labels.items()}
    verdict = "met" if all(growths[label] <= GOAL_GROWTH for label in ("worker", "Prefect server")) else "missed"
    rows = [("waiting returns", "0 → " + " → ".join(str(p["n"]) for p in points))]
    rows += [
        (
            f"{label} RSS",
            " → ".join(
                f"{v:.0f}"
                for v in [base["memory"][name]["rss_mb"]] + [p["snapshot"]["memory"][name]["rss_mb"] for p in points]
            )
            + " MB",
        )
        for name, label in labels.items()
    ]
    last = points[-1]["snapshot"]
    rows += [
        (
            f"DB size at {points[-1]['n']} waiting: ecomflow / Prefect server",
            f"{_mb(last['db_bytes'])} / {_mb(last['prefect_db_bytes'])}",
        ),
        (
            "starts/s to each checkpoint (first POST → all runs PAUSED)",
            " · ".join(f"{p['started_now'] / p['all_suspended_s']:.1f}" for p in points),
        ),
        ("log lines ERROR / WARNING", log_counts_text(figures["logs"])),
    ]
    ratio = (
        f"RSS at {points[-1]['n']} vs {first_n} waiting (goal ≤ +20 % for worker and Prefect server): "
        + ", ".join(f"{label} {value:+.0%}" for label, value in growths.items())
        + f" — {verdict}"
    )
    return Entry(benchmark="waiting_memory", setting=setting, ratio=ratio, rows=rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its figures and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.waiting_memory", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument(
        "--n",
        type=int,
        action="append",
        help="returns waiting on cs_review at a checkpoint; repeat for several (e.g. --n 100 --n 1000 --n 10000)",
    )
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds to let things settle before each measurement"
    )
    parser.add_argument("--timeout", type=float, default=240, help="seconds allowed to reach each checkpoint")
    args = parser.parse_args(argv)
    env = env_overrides(args)
    checkpoints = sorted(set(args.n or [100]))
    figures = run(
        args.db,
        checkpoints,
        env=env or None,
        keep_data=args.keep,
        prefect_db=args.prefect_db,
        settle_s=args.settle,
        timeout=args.timeout,
    )
    print_report(table(figures), figures)
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.waiting_memory",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
