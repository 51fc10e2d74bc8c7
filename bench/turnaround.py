"""Turnaround: how long after a person completes a task does the next task of the instance appear?

Drives returns_exchange instances one at a time over HTTP (cs_review approve → await_parcel →
inspect ok → done) and times, for each transition, the complete's HTTP 200 to the next task of
the same instance showing up in the inbox (GET /tasks?state=open, polled every 20 ms); the last
transition (inspect → instance completed) is timed to GET /instances/{id} saying completed.
Also: POST instance 201 → first task (cs_review) in the inbox.

    cd /work/main && /work/venv/bin/python -m bench.turnaround --db sqlite --steps 20
"""
from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from typing import Any

from bench.stack import (
    DB_CHOICES, BenchStack, Staff, append_results, cpu_seconds, isolated_stack, return_params, summarize,
)

USERS = {"cs": ("customer_service",), "wh": ("warehouse",)}
TASK_STEPS = ("cs_review", "await_parcel", "inspect")
FORMS = {
    "cs_review": {"decision": "approve", "comment": "bench"},
    "await_parcel": {"return_tracking_no": "SF1234567890", "carrier": "SF"},
    "inspect": {"condition": "ok", "restock": "yes"},
}
WHO = {"cs_review": "cs", "await_parcel": "cs", "inspect": "wh"}


def _poll_task(staff: Staff, stack: BenchStack, instance_id: str, step: str, *, interval: float, timeout: float) -> tuple[dict, float]:
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
    deadline = time.monotonic() + timeout
    while True:
        instance = staff.instance(instance_id)
        if instance["state"] == state:
            return instance, time.monotonic()
        if instance["state"] in {"failed", "cancelled"} or time.monotonic() >= deadline:
            raise RuntimeError(f"instance {instance_id} is {instance['state']}, not {state} (timeout {timeout:.0f}s)")
        time.sleep(interval)


def drive(stack: BenchStack, *, steps: int, interval: float = 0.02, step_timeout: float = 120,
          deadline_s: float = 270) -> dict[str, Any]:
    """Drive enough instances for `steps` task→task transitions; return the raw series and summaries."""
    people = {name: stack.staff(name) for name in USERS}
    instances = max(1, math.ceil(steps / 2))  # each return has two task→next-task transitions
    first_task: list[float] = []
    task_to_task: list[float] = []
    per_transition: dict[str, list[float]] = {}
    to_completed: list[float] = []
    complete_http: list[float] = []
    series: list[dict[str, Any]] = []
    cpu_before = {name: cpu_seconds(s.process.pid) for name, s in stack.services().items()}
    started = time.monotonic()
    try:
        for number in range(instances):
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"benchmark passed its {deadline_s:.0f}s budget after {number} instance(s)")
            cs = people["cs"]
            created = cs.start_return(return_params(), business_key=f"BENCH-{uuid.uuid4().hex[:8]}")
            t_201 = time.monotonic()
            instance_id = created["id"]
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
                        people[WHO[following]], stack, instance_id, following, interval=interval, timeout=step_timeout,
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
        cpu_after = {name: cpu_seconds(s.process.pid) for name, s in stack.services().items()}
        # One initial execution plus one replay per completed task.
        executions = instances * (1 + len(TASK_STEPS))
        completed_in_prefect = stack.prefect_count(["COMPLETED"], flow_name="returns_exchange")
        return {
            "instances": instances,
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
        }
    finally:
        for staff in people.values():
            staff.close()


def run(db: str = "sqlite", steps: int = 20, *, interval: float = 0.02, env: dict[str, str] | None = None,
        keep_data: bool = False) -> dict[str, Any]:
    """Start an isolated stack, measure, stop it; return the figures."""
    with isolated_stack(db, users=USERS, env=env, keep_data=keep_data) as stack:
        figures = drive(stack, steps=steps, interval=interval)
        figures["startup"] = dict(stack.timings)
        figures["settings"] = stack.effective_settings()
    figures["db"] = db
    figures["logs"] = {name: {k: v for k, v in report.items() if k != "samples"} for name, report in stack.log_report.items()}
    figures["log_samples"] = {name: report["samples"] for name, report in stack.log_report.items() if report["samples"]}
    return figures


def _row(name: str, summary: dict[str, float]) -> tuple[str, str]:
    if not summary.get("n"):
        return name, "—"
    return name, (
        f"p50 {summary['p50_s']:.3f} s · p95 {summary['p95_s']:.3f} s · max {summary['max_s']:.3f} s "
        f"· min {summary['min_s']:.3f} s (n={summary['n']})"
    )


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        _row("complete 200 → next task in inbox (all task→task steps)", figures["task_to_next_task"]),
        *[_row(f"… {label}", summary) for label, summary in figures["per_transition"].items() if not label.endswith("completed")],
        _row("inspect complete 200 → instance completed", figures["inspect_to_completed"]),
        _row("POST instance 201 → first task (cs_review) in inbox", figures["first_task"]),
        _row("complete HTTP round trip", figures["complete_http"]),
        ("instances driven (sequentially)", str(figures["instances"])),
        ("Prefect runs COMPLETED at the end", str(figures["prefect_runs_completed"])),
        ("worker CPU-s per flow execution (initial run + each resume)", f"{figures['worker_cpu_s_per_execution']:.3f}"),
        ("CPU-s during the run: worker / prefect / api", " / ".join(f"{figures['cpu_s'][k]:.1f}" for k in ("worker", "prefect", "api"))),
        ("wall time of the measured part", f"{figures['elapsed_s']} s"),
        ("stack start: prefect healthy / api healthy / worker ready", " / ".join(
            f"{figures['startup'][k]} s" for k in ("prefect_start_s", "api_start_s", "worker_ready_s"))),
        ("log lines ERROR / WARNING", ", ".join(f"{n}: {r['errors']}/{r['warnings']}" for n, r in figures["logs"].items())),
    ]
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.turnaround", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=DB_CHOICES, default="sqlite")
    parser.add_argument("--steps", type=int, default=20, help="task→task transitions to time (two per return)")
    parser.add_argument("--interval", type=float, default=0.02, help="inbox poll interval in seconds")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra ECOMFLOW_* setting for API and worker")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, SQLite files)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    figures = run(args.db, args.steps, interval=args.interval, env=env or None, keep_data=args.keep)
    rows = table(figures)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("series:", json.dumps(figures["series"], ensure_ascii=False))
    for name, samples in figures["log_samples"].items():
        print(f"--- {name} (first problem lines)")
        for line in samples:
            print("   ", line)
    if not args.no_record:
        notes = [
            "settings: " + ", ".join(f"{k}={v}" for k, v in figures["settings"].items()) + f" (env overrides: {env or 'none'})",
            "series (s): " + ", ".join(f"{item['transition']}={item['s']}" for item in figures["series"]),
        ]
        append_results("Turnaround", db=args.db, rows=rows, notes=notes)
    return figures


if __name__ == "__main__":
    main()
