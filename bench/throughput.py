r"""Throughput: how many human steps per second does the whole stack sustain with K people working flat out?

K simulated staff (customer service, warehouse, operations in turn) work returns_exchange and
presales_order instances over HTTP for S seconds on an isolated stack: each polls its inbox,
claims the oldest tasks it may take and completes them with valid form data (sample_data from
the step's JSON Schema; one return in four is inspected damaged, so operations approves a
deduction). A feeder keeps `--in-flight` instances active, so staff never starve and the backlog
stays bounded. An observer reads our database every 0.1 s (no load on the API) and notes when
each task became visible and when each instance ended (bench.harness.load drives both).

A human step is done when the task after it is visible or its instance ended. After the warm-up:
done steps/s, completes/s accepted by the API, complete 200 → next task visible (p50/p95/p99),
what is left in the pipeline at the end (completes whose next task had not appeared, undelivered
outbox rows, tasks waiting in inboxes), CPU-seconds of each process per done step, the Prefect
API calls per step (from the Prefect server's access log) and, with py-spy installed, where each
process spends its CPU (a sampling profile of worker, Prefect server and API over the window).

--compare-bare then runs the same staff and flow shapes on a bare Prefect served deployment
(bench.bare_prefect, on a fresh Prefect server of its own), its baseline, and prints both side by
side with the ratios. There each execution is a new ~5 CPU-s process, so a few runs in flight
already use every core; it keeps --bare-in-flight runs (default: as many as ours, the same load) and
needs a longer warm-up than ours. Its Prefect server runs with ecomflow's settings (--bare-server
ecomflow, default) or Prefect's own (--bare-server prefect): the pair of runs splits the ratio into
what the server's settings explain and what the runner of the flows explains.

    cd /work/main && .venv/bin/python -m bench.throughput --db sqlite --staff 4 --duration 60 --warmup 20 \
        --compare-bare [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from bench.harness.load import Desk, Item, Recorder, StackSystem, is_damaged, measure, staff_roles
from bench.harness.logs import log_counts_text, log_error_count
from bench.harness.options import add_common_options, env_overrides, setting_of
from bench.harness.profiles import PREFECT_ACCESS_LOG_ENV
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_report
from bench.harness.stack import BenchStack, run_on_stack
from bench.harness.timing import format_summary
from ecomflow.sample_data import FIRST_SKU, return_params, sample_object

PROCESSES = ("returns_exchange", "presales_order")
ENDED = ("completed", "failed", "cancelled")


# --------------------------------------------------------------------------- ecomflow under load


class OurDesk:
    """One member of staff at ecomflow's API: inbox (oldest first), claim, complete."""

    def __init__(
        self,
        stack: BenchStack,
        user: str,
        role: str,
        forms: dict[tuple[str, str], dict],
        roles: list[str],
        recorder: Recorder,
    ) -> None:
        self.http, self.role, self.forms, self.roles, self.recorder = (
            stack.staff(user).http,
            role,
            forms,
            roles,
            recorder,
        )

    def _tasks(self, **params: Any) -> list[Item]:
        """Return the oldest 20 open tasks the filters select."""
        response = self.http.get("/tasks", params={"state": "open", "sort": "created", "limit": 20, **params})
        if not self.recorder.call("GET /tasks", response.status_code, response.status_code == 200):
            return []
        return [Item(t["instance_id"], t["id"], t["process"], t["step"]) for t in response.json()["items"]]

    def inbox(self) -> list[Item]:
        """Return the tasks of my role, oldest first."""
        items = self._tasks(role=self.role)
        if not items and self.role == "operations":
            # Operations (managers) help everyone, except with inspections they might have to approve (four-eyes).
            items = [i for i in self._tasks() if i.step != "inspect"]
        return items

    def take(self, item: Item) -> bool:
        """Claim the task; return whether I got it."""
        response = self.http.post(f"/tasks/{item.point}/claim")
        return self.recorder.call("POST claim", response.status_code, response.status_code == 200)

    def complete(self, item: Item) -> bool:
        """Complete the task with valid form data; return whether the API accepted it."""
        data = sample_object(self.forms[(item.process, item.step)])
        if item.step == "inspect":
            damaged = is_damaged(item.instance, self.roles)
            data.update(condition="damaged" if damaged else "ok", deduction=10 if damaged else 0)
        response = self.http.post(f"/tasks/{item.point}/complete", json={"data": data})
        if response.status_code != 200:
            self.recorder.error(f"complete {item.process}/{item.step}: {response.status_code} {response.text}")
        return self.recorder.call("POST complete", response.status_code, response.status_code == 200)


class OurSystem(StackSystem):
    """ecomflow on an isolated stack; the observer reads our database directly."""

    name = "ecomflow"
    staff_use_prefect = False

    def __init__(self, stack: BenchStack, roles: list[str]) -> None:
        from ecomflow.engine.clock import utcnow
        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.shop.catalog import seed_sku

        self.stack, self.roles, self.since = stack, roles, utcnow()
        with session_scope(stack.database_url) as session:  # enough stock that no order ever runs short
            seed_sku(session, sku=FIRST_SKU, title="bench tee", list_price=Decimal(199), stock=10**8)
        self.starter = stack.staff("feeder").http
        self.forms = {
            (key, step["key"]): step.get("form") or {}
            for key in PROCESSES
            for step in self.starter.get(f"/processes/{key}").raise_for_status().json()["steps"]
        }

    def desks(self, recorder: Recorder) -> list[Desk]:
        """Return one desk per member of staff."""
        return [
            OurDesk(self.stack, f"staff{n}", role, self.forms, self.roles, recorder)
            for n, role in enumerate(self.roles)
        ]

    def start_one(self, number: int, recorder: Recorder) -> str:
        """Start a return or a pre-sales order, in turn; return the instance's id."""
        process = PROCESSES[number % len(PROCESSES)]
        params = (
            return_params()
            if process == "returns_exchange"
            else {"customer": f"顾客{number}", "question": "有白色M码吗？", "channel": "im"}
        )
        response = self.starter.post(
            f"/processes/{process}/instances", json={"business_key": f"TP-{uuid.uuid4().hex[:10]}", "params": params}
        )
        recorder.call("POST instances", response.status_code, response.status_code == 201)
        response.raise_for_status()
        return response.json()["id"]

    def probe(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Return the (instance, task) pairs written since the start and the instances that ended."""
        from sqlalchemy import select

        from ecomflow.engine.db.models import HumanTask, ProcessInstance
        from ecomflow.engine.db.sessions import session_scope

        with session_scope(self.stack.database_url) as session:
            tasks = session.execute(
                select(HumanTask.instance_id, HumanTask.id).where(HumanTask.created_at >= self.since)
            ).all()
            ends = session.execute(
                select(ProcessInstance.id, ProcessInstance.state).where(
                    ProcessInstance.created_at >= self.since, ProcessInstance.state.in_(ENDED)
                )
            ).all()
        return [tuple(t) for t in tasks], [tuple(e) for e in ends]

    def pipeline(self) -> dict[str, int]:
        """Return what is still on its way: undelivered outbox rows, open tasks, runs not yet waiting."""
        from sqlalchemy import func, select

        from ecomflow.engine.db.models import HumanTask, OutboxMessage
        from ecomflow.engine.db.sessions import session_scope

        with session_scope(self.stack.database_url) as session:
            undelivered = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.failed_at.is_(None),
                    OutboxMessage.kind != "webhook",
                )
            )
            open_tasks = session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.state == "open"))
        running = self.stack.prefect_count(["SCHEDULED", "PENDING", "RUNNING"])
        return {
            "outbox undelivered": undelivered,
            "tasks open": open_tasks,
            "Prefect runs scheduled/pending/running": running,
        }


def run_ours(
    db: str,
    *,
    staff: int,
    duration: float,
    warmup: float,
    in_flight: int,
    env: dict[str, str] | None = None,
    keep_data: bool = False,
    prefect_db: str = "sqlite",
    profile: bool = True,
    workers: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """Start an isolated stack, load it, stop it; return the figures."""
    roles = staff_roles(staff)
    users = {"feeder": ("customer_service",), **{f"staff{n}": (role,) for n, role in enumerate(roles)}}

    def load(stack: BenchStack) -> dict[str, Any]:
        return measure(
            OurSystem(stack, roles),
            warmup=warmup,
            duration=duration,
            in_flight=in_flight,
            profile=profile,
            profile_dir=stack.data_dir / "profiles",
            **options,
        )

    figures = run_on_stack(
        load,
        db,
        prefect_db=prefect_db,
        users=users,
        env=env,
        keep_data=keep_data,
        prefect_server_env=PREFECT_ACCESS_LOG_ENV,
        workers=workers,
    )
    figures["roles"] = Counter(roles)
    return figures


# --------------------------------------------------------------------------- report and command line


def _spread_text(summary: dict[str, float]) -> str:
    return format_summary(summary, unit="s", digits=2)


def _per_step(count: int, steps: int) -> str:
    return f"{count / steps:.1f}" if steps else "—"


def _cpu_per_step(f: dict[str, Any]) -> float | None:
    """Return the CPU seconds of all the system's processes per done step."""
    return sum(f["cpu_s"].values()) / f["steps_done"] if f["steps_done"] else None


def _postgres_cpu_per_step(f: dict[str, Any]) -> float | None:
    """Return PostgreSQL's CPU seconds (the whole cluster) per done step, None when not read or no step was done."""
    return f["postgres_cpu_s"] / f["steps_done"] if f.get("postgres_cpu_s") is not None and f["steps_done"] else None


def _postgres_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """Return PostgreSQL's CPU row when it was read (a stack on PostgreSQL), else none."""
    if f.get("postgres_cpu_s") is None:
        return []
    per_step = _postgres_cpu_per_step(f)
    return [
        (
            "PostgreSQL CPU-s (whole cluster): in the window / per done step",
            f"{f['postgres_cpu_s']:.1f} / " + (f"{per_step:.2f}" if per_step is not None else "—"),
        )
    ]


def system_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the figures of one system, one (name, value) row each."""
    steps, cpu = f["steps_done"], f["cpu_s"]
    calls = f["prefect_calls"]
    rows = [
        (
            "human steps done/s (next task visible or instance ended)",
            f"{f['steps_per_s']:.2f} ({steps} in {f['window_s']} s)",
        ),
        ("completes accepted/s", f"{f['accepted_per_s']:.2f} ({f['accepted']})"),
        ("complete 200 → next task visible (or ended)", _spread_text(f["turnaround"])),
        *[(f"… after {step}", _spread_text(s)) for step, s in f["turnaround_by_step"].items()],
        ("start 201 → first task visible", _spread_text(f["start_to_first_point"])),
        ("instances started / ended in the window", f"{f['started']} / {sum(f['ended'].values())} {dict(f['ended'])}"),
        ("accepted, next not yet visible: window start → end", "{start} → {end}".format(**f["in_pipeline"])),
        ("waiting in inboxes: window start → end", "{start} → {end}".format(**f["waiting_in_inbox"])),
        *[
            (f"{name}: window start → end", f"{f['pipeline']['start'][name]} → {f['pipeline']['end'][name]}")
            for name in f["pipeline"]["end"]
        ],
        ("completes still without a next task after the drain", str(f["not_done_after_drain"])),
        ("human steps done in the whole run (warm-up and drain included)", str(f["steps_done_total"])),
        (
            "CPU-s per done step: " + " / ".join(cpu),
            " / ".join(f"{v:.2f}" if v is not None else "—" for v in f["cpu_s_per_step"].values())
            + (f" (total {_cpu_per_step(f):.2f})" if steps else ""),
        ),
        (
            "CPU-s in the window: " + " / ".join(cpu) + " / harness / py-spy",
            " / ".join(f"{v:.1f}" for v in cpu.values()) + f" / {f['harness_cpu_s']:.1f} / {f['profiler_cpu_s']:.1f}",
        ),
        *_postgres_rows(f),
        (
            "Prefect API calls per done step (top endpoints)",
            f"{_per_step(sum(calls.values()), steps)}, of which staff and "
            f"feeder {_per_step(f['prefect_calls_by_harness'], steps)}: "
            + ", ".join(f"{k} {_per_step(v, steps)}" for k, v in list(calls.items())[:8]),
        ),
        (
            "harness requests per done step",
            ", ".join(f"{k} {_per_step(v, steps)}" for k, v in f["harness_calls"].items()),
        ),
        ("refused answers (kind status: count)", ", ".join(f"{k}: {v}" for k, v in f["refused"].items()) or "none"),
        ("stack start", ", ".join(f"{k} {v} s" for k, v in f["startup"].items())),
        ("log lines ERROR / WARNING", log_counts_text(f["logs"])),
    ]
    if not f["profiles"]:
        rows.append(("sampling profiles", "none (--no-profile, or py-spy is not installed: pip install py-spy)"))
    for name, p in f["profiles"].items():
        if p.get("working_samples"):
            rows.append(
                (f"profile {name}: self time by package", ", ".join(f"{k} {v}%" for k, v in p["self_by_package"][:5]))
            )
            rows.append((f"profile {name}: top inclusive", ", ".join(f"{k} {v}%" for k, v in p["inclusive"][:6])))
    return rows


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "—"


def ratio_rows(ours: dict[str, Any], bare: dict[str, Any]) -> list[tuple[str, str]]:
    """Return ecomflow against bare Prefect: steps/s, turnaround p50 and CPU per step."""
    return [
        ("ratio ecomflow / bare: human steps done/s", _ratio(ours["steps_per_s"], bare["steps_per_s"])),
        ("ratio ecomflow / bare: turnaround p50", _ratio(ours["turnaround"].get("p50"), bare["turnaround"].get("p50"))),
        (
            "ratio ecomflow / bare: CPU-s per done step (all processes)",
            _ratio(_cpu_per_step(ours), _cpu_per_step(bare)),
        ),
    ]


def table(results: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Return one system's rows, or both side by side with the ratios first."""
    if len(results) == 1:
        [figures] = results.values()
        return system_rows(figures)
    rows = ratio_rows(results["ecomflow"], results["bare"])
    for name, figures in results.items():
        rows += [(f"{name}: {label}", value) for label, value in system_rows(figures)]
    return rows


def _headline(name: str, f: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the few rows of one system that RESULTS.md keeps."""
    cpu = " / ".join(f"{k} {v:.2f}" for k, v in f["cpu_s_per_step"].items() if v is not None)
    postgres = _postgres_cpu_per_step(f)
    postgres_rows = (
        [] if postgres is None else [(f"{name}: PostgreSQL CPU-s per done step (whole cluster)", f"{postgres:.3f}")]
    )
    return [
        (f"{name}: human steps done/s", f"{f['steps_per_s']:.2f} ({f['steps_done']} in {f['window_s']} s)"),
        (f"{name}: complete 200 → next task visible", _spread_text(f["turnaround"])),
        (f"{name}: start 201 → first task visible", _spread_text(f["start_to_first_point"])),
        (f"{name}: CPU-s per done step", cpu + (f" (total {_cpu_per_step(f):.2f})" if f["steps_done"] else "") or "—"),
        *postgres_rows,
        (
            f"{name}: log ERROR lines / refused answers",
            f"{log_error_count(f['logs'])} / " + (", ".join(f"{k}: {v}" for k, v in f["refused"].items()) or "none"),
        ),
    ]


def entry(results: dict[str, dict[str, Any]], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run: the headline figures of each side and, with bare Prefect, the ratios."""
    if {"ecomflow", "bare"} <= set(results):
        ratio = "against bare Prefect (ecomflow / bare): " + "; ".join(
            f"{label.removeprefix('ratio ecomflow / bare: ')} {value}"
            for label, value in ratio_rows(results["ecomflow"], results["bare"])
        )
    else:
        ratio = "against bare Prefect: not run in this measurement (its figure is the 'vs bare Prefect' entry)"
    rows = [row for name, figures in results.items() for row in _headline(name, figures)]
    return Entry(benchmark="throughput", setting=setting, ratio=ratio, rows=rows)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the benchmark from the command line; print its figures and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    add_common_options(parser)
    parser.add_argument(
        "--staff", type=int, default=6, help="simulated staff (roles in turn: customer service, warehouse, operations)"
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of load, warm-up included")
    parser.add_argument("--warmup", type=float, default=15, help="seconds before measuring")
    parser.add_argument(
        "--in-flight", type=int, default=None, help="active instances the feeder keeps (default 4 per staff)"
    )
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds a person waits before looking at an empty inbox again"
    )
    parser.add_argument(
        "--drain", type=float, default=30, help="seconds to let the last accepted completes show their next task"
    )
    parser.add_argument(
        "--min-steps",
        type=int,
        default=0,
        help="keep the staff working after the window (at most --drain s) until each side completed this many steps",
    )
    parser.add_argument(
        "--compare-bare", action="store_true", help="then run the same load on a bare Prefect served deployment"
    )
    parser.add_argument("--bare-only", action="store_true", help="run only the bare Prefect side")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes on our side (the production layout runs several)"
    )
    parser.add_argument(
        "--bare-poll", type=int, default=1, help="PREFECT_RUNNER_POLL_FREQUENCY of the bare served runner"
    )
    parser.add_argument(
        "--bare-in-flight",
        type=int,
        default=None,
        help="active runs on the bare side (default: the same as ours, --in-flight, so both carry the same load; "
        "each execution there is a ~5 CPU-s process, so a few runs already use every core and more only queue)",
    )
    parser.add_argument(
        "--bare-server",
        choices=["ecomflow", "prefect"],
        default="ecomflow",
        help="the bare side's Prefect server: run with ecomflow's settings (default: only the flows' runner differs) "
        "or stock `prefect server start` (what the settings explain)",
    )
    parser.add_argument("--no-profile", action="store_true", help="do not sample the processes with py-spy")
    parser.add_argument(
        "--profile-rate", type=int, default=10, help="py-spy samples per second (each sampled process costs some CPU)"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < args.duration:
        parser.error("--warmup must be at least 0 and less than --duration")
    env = env_overrides(args)
    options = {
        "staff": args.staff,
        "duration": args.duration,
        "warmup": args.warmup,
        "in_flight": args.in_flight or 4 * args.staff,
        "keep_data": args.keep,
        "prefect_db": args.prefect_db,
        "profile": not args.no_profile,
        "poll": args.poll,
        "drain": args.drain,
        "min_steps": args.min_steps,
        "profile_rate": args.profile_rate,
    }
    results: dict[str, dict[str, Any]] = {}
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not args.bare_only:
        results["ecomflow"] = run_ours(args.db, env=env or None, workers=args.workers, **options)
    if args.compare_bare or args.bare_only:
        from bench.bare_prefect import run_bare

        results["bare"] = run_bare(
            poll_seconds=args.bare_poll,
            server=args.bare_server,
            **{**options, "in_flight": args.bare_in_flight or options["in_flight"]},
        )
    merged = {
        "log_samples": {f"{s} {n}": v for s, f in results.items() for n, v in f["log_samples"].items()},
        "first_errors": {f"{s} {n}": v for s, f in results.items() for n, v in f["first_errors"].items()},
        "data_dir": ", ".join(f["data_dir"] for f in results.values()),
    }
    print_report(table(results), merged)
    for name, figures in results.items():
        for proc, p in figures["profiles"].items():
            print(
                f"--- {name} profile of {proc}:",
                json.dumps({k: v for k, v in p.items() if k != "file"}, ensure_ascii=False),
            )
        if figures["errors"]:
            print(f"--- {name} harness errors:", *figures["errors"][:5], sep="\n    ")
    if args.record:
        bare = f"bare Prefect ({args.bare_server} server settings)"
        mode = f"{bare} only" if args.bare_only else (f"vs {bare}" if args.compare_bare else "")
        if args.workers > 1:
            mode = ", ".join(filter(None, [f"{args.workers} workers", mode]))
        record_run(
            entry(results, setting=setting_of(args, extra=mode)),
            module="bench.throughput",
            argv=argv,
            load_before=next(iter(results.values()))["load_before"],
        )
    return results


if __name__ == "__main__":
    main()
