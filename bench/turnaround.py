"""Turnaround: how long after a person completes a task does the next task of the instance appear?

Drives returns_exchange instances one at a time over HTTP (cs_review approve → await_parcel →
inspect ok → done) and times, for each transition, the complete's HTTP 200 to the next task of
the same instance showing up in the inbox (GET /tasks?state=open, polled every 20 ms); the last
transition (inspect → instance completed) is timed to GET /instances/{id} saying completed.
Also: POST instance 201 → first task (cs_review) in the inbox. Its baseline is the goal: p50 < 1 s,
p95 < 2 s.

    cd /work/main && .venv/bin/python -m bench.turnaround --db sqlite --steps 20 [--record]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import uuid
from typing import Any

from bench.harness.logs import log_counts_text
from bench.harness.options import add_common_options, env_overrides, setting_of
from bench.harness.prefect_api import flow_run_states
from bench.harness.recording import Entry, record_run
from bench.harness.report import closing_rows, print_report
from bench.harness.stack import BenchStack, run_on_stack
from bench.harness.staff import Staff
from bench.harness.timing import format_summary, summarize
from ecomflow.sample_data import return_params

USERS = {"cs": ("customer_service",), "wh": ("warehouse",)}
TASK_STEPS = ("cs_review", "await_parcel", "inspect")
FORMS = {
    "cs_review": {"decision": "approve", "comment": "bench"},
    "await_parcel": {"return_tracking_no": "SF1234567890", "carrier": "SF", "return_shipping_cost": 12},
    "inspect": {"condition": "ok", "restock": "yes"},
}
WHO = {"cs_review": "cs", "await_parcel": "cs", "inspect": "wh"}
GOAL_S = {"p50": 1.0, "p95": 2.0}
SPREAD_KEYS = ("p50", "p95", "max", "min")


def _poll_task(
    staff: Staff, stack: BenchStack, instance_id: str, step: str, *, interval: float, timeout: float
) -> tuple[dict, float]:
    """Poll the inbox until the instance's open task for step appears; return it and the monotonic time seen."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        for task in staff.open_tasks():
            if task["instance_id"] == instance_id and task["step"] == step:
                return task, time.monotonic()
        polls += 1
        if time.monotonic() >= deadline:
            raise TimeoutError(f"task {step} of instance {instance_id} did not appear within {timeout:.0f}s")
        if polls % 50 == 0:
            stack.check_alive()
        time.sleep(interval)


def _poll_state(staff: Staff, instance_id: str, state: str, *, interval: float, timeout: float) -> tuple[dict, float]:
    """Poll the instance until it is in state; return it and the monotonic time seen."""
    deadline = time.monotonic() + timeout
    while True:
        instance = staff.instance(instance_id)
        if instance["state"] == state:
            return instance, time.monotonic()
        if instance["state"] in {"failed", "cancelled"} or time.monotonic() >= deadline:
            raise RuntimeError(f"instance {instance_id} is {instance['state']}, not {state} (timeout {timeout:.0f}s)")
        time.sleep(interval)


def breakdown(stack: BenchStack, instance_ids: list[str]) -> dict[str, dict[str, float]]:
    """Split each complete → next task into its parts, from our DB and Prefect's state history.

    complete → resumed: the complete's outbox row was written → Prefect shows the run Scheduled/"Resuming"
    resumed → picked up: → the worker took it (its poll): to Running, or to Pending on a server without
    ecomflow's take rule
    picked up → running: Pending → Running (0 when the take went straight to Running)
    running → next task: Running → the next task row was written (replay up to the next wait)
    """
    from sqlalchemy import select

    from ecomflow.engine.db.models import HumanTask, OutboxMessage, ProcessInstance
    from ecomflow.engine.db.sessions import session_scope

    parts: dict[str, list[float]] = {}
    with session_scope(stack.database_url) as session:
        for instance_id in instance_ids:
            states = flow_run_states(stack.prefect_api, session.get(ProcessInstance, instance_id).flow_run_id)
            tasks = list(
                session.scalars(
                    select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.created_at)
                )
            )
            for index, task in enumerate(tasks):
                message = session.scalar(
                    select(OutboxMessage).where(OutboxMessage.task_id == task.id, OutboxMessage.kind == "resume_run")
                )
                if message is None:
                    continue
                later = [st for st in states if st[0] >= message.created_at]
                try:
                    resuming = next(st[0] for st in later if st[1] == "SCHEDULED")
                    pending = next(st[0] for st in later if st[1] in ("PENDING", "RUNNING") and st[0] >= resuming)
                    running = next(st[0] for st in later if st[1] == "RUNNING" and st[0] >= pending)
                except StopIteration:
                    continue
                parts.setdefault("complete → resumed in Prefect", []).append(
                    (resuming - message.created_at).total_seconds()
                )
                parts.setdefault("resumed → taken by the worker", []).append((pending - resuming).total_seconds())
                parts.setdefault("picked up → Running", []).append((running - pending).total_seconds())
                if index + 1 < len(tasks):
                    parts.setdefault("Running → next task row written", []).append(
                        (tasks[index + 1].created_at - running).total_seconds()
                    )
    return {label: summarize(values) for label, values in parts.items()}


def drive(
    stack: BenchStack, *, steps: int, interval: float = 0.02, step_timeout: float = 120, deadline_s: float = 270
) -> dict[str, Any]:
    """Drive enough instances for `steps` task→task transitions; return the raw series and summaries."""
    people = {name: stack.staff(name) for name in USERS}
    instances = max(1, math.ceil(steps / 2))  # each return has two task→next-task transitions
    first_task: list[float] = []
    task_to_task: list[float] = []
    per_transition: dict[str, list[float]] = {}
    to_completed: list[float] = []
    complete_http: list[float] = []
    series: list[dict[str, Any]] = []
    instance_ids: list[str] = []
    cpu_before, memory_before = stack.cpu_seconds(), stack.memory()
    started = time.monotonic()
    try:
        for number in range(instances):
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"benchmark passed its {deadline_s:.0f}s budget after {number} instance(s)")
            cs = people["cs"]
            created = cs.start_return(return_params(), business_key=f"BENCH-{uuid.uuid4().hex[:8]}")
            t_201 = time.monotonic()
            instance_id = created["id"]
            instance_ids.append(instance_id)
            task, seen = _poll_task(cs, stack, instance_id, "cs_review", interval=interval, timeout=step_timeout)
            first_task.append(seen - t_201)
            series.append({"instance": number, "transition": "201→cs_review", "s": round(seen - t_201, 3)})
            for index, step in enumerate(TASK_STEPS):
                staff = people[WHO[step]]
                staff.claim(task["id"])
                t_send = time.monotonic()
                staff.complete(task["id"], FORMS[step])
                t_200 = time.monotonic()
                complete_http.append(t_200 - t_send)
                if index + 1 < len(TASK_STEPS):
                    following = TASK_STEPS[index + 1]
                    task, seen = _poll_task(
                        people[WHO[following]],
                        stack,
                        instance_id,
                        following,
                        interval=interval,
                        timeout=step_timeout,
                    )
                    label = f"{step}→{following}"
                    task_to_task.append(seen - t_200)
                else:
                    _, seen = _poll_state(cs, instance_id, "completed", interval=interval, timeout=step_timeout)
                    label = f"{step}→completed"
                    to_completed.append(seen - t_200)
                per_transition.setdefault(label, []).append(seen - t_200)
                series.append({"instance": number, "transition": label, "s": round(seen - t_200, 3)})
        elapsed = time.monotonic() - started
        cpu_after = stack.cpu_seconds()
        # One initial execution plus one replay per completed task.
        executions = instances * (1 + len(TASK_STEPS))
        # Our DB says completed a moment before Prefect's run finishes: give Prefect up to 30 s.
        wait_deadline = time.monotonic() + 30
        while (completed_in_prefect := stack.prefect_count(["COMPLETED"], flow_name="returns_exchange")) < instances:
            if time.monotonic() > wait_deadline:
                break
            time.sleep(0.2)
        memory_after = stack.memory()
        return {
            "instances": instances,
            "rss_mb": {name: (memory_before[name]["rss_mb"], memory_after[name]["rss_mb"]) for name in memory_after},
            "elapsed_s": round(elapsed, 1),
            "first_task": summarize(first_task),
            "task_to_next_task": summarize(task_to_task),
            "inspect_to_completed": summarize(to_completed),
            "per_transition": {label: summarize(values) for label, values in per_transition.items()},
            "complete_http": summarize(complete_http),
            "cpu_s": {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_after},
            "worker_cpu_s_per_execution": round((cpu_after["worker"] - cpu_before["worker"]) / executions, 3),
            "prefect_runs_completed": completed_in_prefect,
            "series": series,
            "breakdown": breakdown(stack, instance_ids),
        }
    finally:
        for staff in people.values():
            staff.close()


def run(
    db: str = "sqlite",
    steps: int = 20,
    *,
    interval: float = 0.02,
    env: dict[str, str] | None = None,
    keep_data: bool = False,
    prefect_db: str = "sqlite",
) -> dict[str, Any]:
    """Start an isolated stack, measure, stop it; return the figures."""
    return run_on_stack(
        lambda stack: drive(stack, steps=steps, interval=interval),
        db,
        prefect_db=prefect_db,
        users=USERS,
        env=env,
        keep_data=keep_data,
    )


def _row(name: str, summary: dict[str, float]) -> tuple[str, str]:
    return name, format_summary(summary, unit="s", keys=SPREAD_KEYS)


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows."""
    return [
        _row("complete 200 → next task in inbox (all task→task steps)", figures["task_to_next_task"]),
        *[
            _row(f"… {label}", summary)
            for label, summary in figures["per_transition"].items()
            if not label.endswith("completed")
        ],
        _row("inspect complete 200 → instance completed", figures["inspect_to_completed"]),
        _row("POST instance 201 → first task (cs_review) in inbox", figures["first_task"]),
        _row("complete HTTP round trip", figures["complete_http"]),
        *[_row(f"  part: {label}", summary) for label, summary in figures["breakdown"].items()],
        ("instances driven (sequentially)", str(figures["instances"])),
        ("Prefect runs COMPLETED at the end", str(figures["prefect_runs_completed"])),
        ("worker CPU-s per flow execution (initial run + each resume)", f"{figures['worker_cpu_s_per_execution']:.3f}"),
        (
            "CPU-s during the run: worker / prefect / api",
            " / ".join(f"{figures['cpu_s'][k]:.1f}" for k in ("worker", "prefect", "api")),
        ),
        (
            "RSS before → after (0 waiting at both ends): worker / prefect / api",
            " / ".join(
                f"{figures['rss_mb'][k][0]:.0f} → {figures['rss_mb'][k][1]:.0f} MB"
                for k in ("worker", "prefect", "api")
            ),
        ),
        ("wall time of the measured part", f"{figures['elapsed_s']} s"),
        *closing_rows(figures),
    ]


def goal_ratio(summary: dict[str, float]) -> str:
    """Return the turnaround against its goal, as a multiple of each limit."""
    if not summary.get("n"):
        return "against the goal (p50 < 1 s, p95 < 2 s): nothing measured"
    ratios = {key: summary[key] / limit for key, limit in GOAL_S.items()}
    verdict = "met" if all(r < 1 for r in ratios.values()) else "missed"
    return (
        "against the goal (p50 < 1 s, p95 < 2 s): "
        + ", ".join(f"{key} {r:.2f}×" for key, r in ratios.items())
        + f" of the limit — {verdict}"
    )


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run: the turnarounds and their ratio to the goal."""
    return Entry(
        benchmark="turnaround",
        setting=setting,
        ratio=goal_ratio(figures["task_to_next_task"]),
        rows=[
            _row("complete 200 → next task in inbox (all task→task steps)", figures["task_to_next_task"]),
            _row("inspect complete 200 → instance completed", figures["inspect_to_completed"]),
            _row("POST instance 201 → first task (cs_review) in inbox", figures["first_task"]),
            (
                "worker CPU-s per flow execution (initial run + each resume)",
                f"{figures['worker_cpu_s_per_execution']:.3f}",
            ),
            ("log lines ERROR / WARNING", log_counts_text(figures["logs"])),
        ],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print its figures and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.turnaround", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument("--steps", type=int, default=20, help="task→task transitions to time (two per return)")
    parser.add_argument("--interval", type=float, default=0.02, help="inbox poll interval in seconds")
    args = parser.parse_args(argv)
    env = env_overrides(args)
    figures = run(
        args.db, args.steps, interval=args.interval, env=env or None, keep_data=args.keep, prefect_db=args.prefect_db
    )
    print_report(table(figures), figures)
    print("series:", json.dumps(figures["series"], ensure_ascii=False))
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.turnaround",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
