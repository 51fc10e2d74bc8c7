"""Chaos: drive returns and pre-sales orders through the API while the processes under them are killed.

Simulated staff (customer service, warehouse, operations) work their inboxes over HTTP the way
people do: read the task, claim it, submit the form; on a connection error or a 5xx they wait and
try again (the complete carries an Idempotency-Key, as a browser retrying a submit would), and
every completion answered 200 is written down. Meanwhile a chaos thread, at random intervals from
a seeded RNG, SIGKILLs and restarts one of the API, the flow worker and the Prefect server (on
--db postgresql also restarts PostgreSQL itself). Then everything down is restarted, the staff
finish what they can, the system settles, and the database and Prefect are checked: every
instance is ended or waits on a person or a timer, nothing ran twice, nothing answered 200 was lost.
There is no fault-free baseline: the figure is checks passed of checks run, and completions kept of
completions answered 200. The people are in bench.chaos_staff, the faults in bench.chaos_faults and
the checks in bench.chaos_checks.

    cd /work/main && .venv/bin/python -m bench.chaos --db sqlite --instances 40 --duration 180 --seed 1 [--record]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bench.chaos_checks import Check, Snapshot, prefect_runs, run_checks, take_snapshot
from bench.chaos_faults import Chaos, restart, wait_for_database
from bench.chaos_staff import (
    PROCESSES,
    SKUS,
    USERS,
    Completion,
    Person,
    StaffThread,
    Starter,
    Tally,
    plan_instances,
    retry_db,
)
from bench.harness.logs import finish_data_dir, log_counts_text, log_figures
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import closing_rows, print_rows
from bench.harness.sampling import loadavg
from bench.harness.stack import BenchStack, isolated_stack

# Short leases and polls, so a dead worker's runs come back within seconds.
CHAOS_ENV = {
    "ECOMFLOW_RUN_LEASE_SECONDS": "3",
    "ECOMFLOW_WORKER_POLL_SECONDS": "0.2",
    "ECOMFLOW_DISPATCHER_POLL_SECONDS": "0.3",
    "ECOMFLOW_SWEEPER_POLL_SECONDS": "1",
    "ECOMFLOW_OUTBOX_LEASE_SECONDS": "5",
}
TARGETS = ("api", "worker", "prefect")


# --------------------------------------------------------------------------- settling


def quiet(stack: BenchStack) -> dict[str, int]:
    """What still moves: undelivered outbox messages and runs of ours scheduled, pending or running."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.events.outbox import undelivered_count

    with session_scope(stack.database_url) as session:
        undelivered = undelivered_count(session)
    moving = Counter(
        run["state_type"] for run in prefect_runs(stack) if run["state_type"] in ("SCHEDULED", "PENDING", "RUNNING")
    )
    return {"undelivered outbox": undelivered, **{f"runs {k.lower()}": v for k, v in moving.items()}}


def unfinished_for_staff(stack: BenchStack) -> int:
    """Instances of ours that are active and not parked on a timer: staff still have work there."""
    from sqlalchemy import func, select

    from ecomflow.engine.db.models import ProcessInstance, Timer
    from ecomflow.engine.db.sessions import session_scope

    with session_scope(stack.database_url) as session:
        on_timer = select(Timer.instance_id).where(Timer.fired_at.is_(None))
        return session.scalar(
            select(func.count())
            .select_from(ProcessInstance)
            .where(
                ProcessInstance.process_key.in_(PROCESSES),
                ProcessInstance.state.in_(["running", "waiting"]),
                ProcessInstance.id.not_in(on_timer),
            )
        )


def wait_settled(stack: BenchStack, *, timeout: float) -> tuple[float, dict[str, int]]:
    """Wait until nothing moves twice in a row, at most timeout seconds; return the time taken and what still moved."""
    began, calm, last = time.monotonic(), 0, {}
    while time.monotonic() - began < timeout:
        last = retry_db(lambda: quiet(stack), what="reading what still moves")
        calm = calm + 1 if not any(last.values()) else 0
        if calm >= 2:
            break
        time.sleep(1)
    return round(time.monotonic() - began, 1), last


# --------------------------------------------------------------------------- one run


def seed_skus(database_url: str) -> None:
    """Give the chaos SKUs their initial stock: plenty, some, scarce and none."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.shop.catalog import seed_sku

    with session_scope(database_url) as session:
        for sku, stock in SKUS.items():
            seed_sku(session, sku=sku, title=f"混沌测试 {sku}", list_price=Decimal("109.00"), stock=stock)


def run(
    db: str = "sqlite",
    *,
    instances: int = 40,
    duration: float = 180,
    seed: int = 1,
    kill_every: tuple[float, float] = (8, 20),
    plan: Sequence[tuple[float, str]] | None = None,
    restart_postgresql: bool | None = None,
    drain: float | None = None,
    settle_timeout: float = 120,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Start a stack, drive it under chaos, settle, check; return the figures (checks included)."""
    targets = [
        *TARGETS,
        *(["postgresql"] if (db == "postgresql" if restart_postgresql is None else restart_postgresql) else []),
    ]
    drain = max(20.0, duration / 4) if drain is None else drain
    load_before, wall = loadavg(), time.monotonic()
    planned = plan_instances(seed, instances)
    ledger: list[Completion] = []
    tally, lock, staff_stop, starter_stop = Tally(), threading.Lock(), threading.Event(), threading.Event()
    figures: dict[str, Any] = {
        "db": db,
        "seed": seed,
        "instances": instances,
        "duration": duration,
        "targets": targets,
        "kill_every": kill_every,
        "plan": plan,
        "load_before": load_before,
    }
    with isolated_stack(
        db, users={**USERS, "shop": ("customer_service",)}, env=CHAOS_ENV, keep_data=keep_data
    ) as stack:
        figures["startup"], figures["data_dir"] = dict(stack.timings), str(stack.data_dir)
        seed_skus(stack.database_url)
        people = {name: Person(stack.api_url, name, stack.tokens[name], tally) for name in [*USERS, "shop"]}
        starter = Starter(
            people["shop"], planned, database_url=stack.database_url, spread=duration * 0.5, stop=starter_stop
        )
        staff = [StaffThread(people[name], seed=seed, ledger=ledger, lock=lock, stop=staff_stop) for name in USERS]
        chaos = Chaos(stack, seed=seed, duration=duration, kill_every=kill_every, targets=targets, plan=plan)
        try:
            for thread in (starter, *staff, chaos):
                thread.start()
            chaos.join(duration + 600)
            began_settle = time.monotonic()
            for service in stack.services().values():  # whatever a failed restart left down
                if not service.running():
                    restart(service)
            if db == "postgresql":
                wait_for_database(stack.database_url)
            starter.join(max(0.0, duration * 0.5 + 180 - (time.monotonic() - chaos.began)))
            deadline = time.monotonic() + drain
            while time.monotonic() < deadline and retry_db(lambda: unfinished_for_staff(stack), what="counting") > 0:
                time.sleep(1)
        finally:
            starter_stop.set()
            staff_stop.set()
            for thread in (starter, *staff):
                thread.join(150)
            for person in people.values():
                person.close()
        figures["drain_s"] = round(time.monotonic() - began_settle, 1)
        figures["settle_s"], figures["still_moving"] = wait_settled(stack, timeout=settle_timeout)
        snap = retry_db(lambda: take_snapshot(stack), what="reading the final state")
        figures["checks"] = run_checks(snap, planned=planned, ledger=ledger)
        figures["kills"], figures["chaos_error"] = chaos.kills, repr(chaos.error) if chaos.error else None
        figures["starts"] = Counter(starter.started.values())
        figures["counts"] = counts(snap, ledger, tally)
        figures["running_while_waiting"] = [
            i.id for i in snap.instances.values() if i.state == "running" and i.process_key in PROCESSES
        ]
    figures["wall_s"] = round(time.monotonic() - wall, 1)
    figures |= log_figures(stack.log_report)
    figures["settings"] = {k.removeprefix("ECOMFLOW_").lower(): v for k, v in CHAOS_ENV.items()}
    passed = all(c.passed for c in figures["checks"]) and not figures["chaos_error"]
    # The stack keeps a data dir whose logs have ERROR lines; killed processes always leave some.
    finish_data_dir(stack.data_dir, keep=keep_data or not passed)
    return figures


def counts(snap: Snapshot, ledger: list[Completion], tally: Tally) -> dict[str, Any]:
    """Return what happened: instances, states, outcomes, steps, refunds, reservations and the staff's tally."""
    ours = [i for i in snap.instances.values() if i.process_key in PROCESSES]
    tasks = [t for rows in snap.tasks.values() for t in rows]
    return {
        "instances": Counter(i.process_key for i in ours),
        "instance states": Counter(i.state for i in ours),
        "outcomes": Counter((i.result or {}).get("outcome") for i in ours if i.result),
        "tasks": len(tasks),
        "steps completed": sum(t.state == "completed" for t in tasks),
        "completes answered 200": len(ledger),
        "refunds": len(snap.refunds),
        "reservation lines": len(snap.reservations),
        "rescheduled runs": sum(
            1 for rows in snap.events.values() for e in rows if e.type == "instance.run_rescheduled"
        ),
        **tally.snapshot(),
    }


# --------------------------------------------------------------------------- report


def check_rows(checks: list[Check], limit: int = 8) -> list[tuple[str, str]]:
    """Return a PASS or FAIL row per check, with its first offenders."""
    rows = []
    for check in checks:
        value = "PASS" if check.passed else f"FAIL ({len(check.offenders)}): " + "; ".join(check.offenders[:limit])
        rows.append((f"check: {check.name}", value))
    return rows


def table(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows."""
    c = figures["counts"]
    kinds = Counter(k.what for k in figures["kills"] if k.injected)
    dead = [f"{k.what} at {k.at_s} s ({k.how})" for k in figures["kills"] if not k.injected]
    return [
        (
            "instances started (returns / presales)",
            f"{c['instances'].get('returns_exchange', 0)} / {c['instances'].get('presales_order', 0)} "
            f"({', '.join(f'{n} {how}' for how, n in figures['starts'].items())})",
        ),
        (
            "chaos: seed / duration / kill interval / targets",
            f"{figures['seed']} / {figures['duration']} s / "
            + ("a fixed plan" if figures["plan"] else f"{figures['kill_every'][0]}–{figures['kill_every'][1]} s")
            + f" / {', '.join(figures['targets'])}",
        ),
        ("kills done", f"{sum(kinds.values())} ({', '.join(f'{w} {n}' for w, n in sorted(kinds.items()))})"),
        ("parts found dead that the chaos did not kill (restarted)", "; ".join(dead) or "none"),
        ("instance states at the end", ", ".join(f"{s} {n}" for s, n in sorted(c["instance states"].items()))),
        ("outcomes", ", ".join(f"{o} {n}" for o, n in sorted(c["outcomes"].items()))),
        (
            "steps completed (tasks) / completes answered 200",
            f"{c['steps completed']} / {c['completes answered 200']} "
            f"({c.get('completes answered 200 after a retry', 0)} after a retry)",
        ),
        (
            "requests / retries / 5xx / connection errors / gave up",
            " / ".join(str(c.get(k, 0)) for k in ("requests", "retries", "5xx", "connection errors", "gave up")),
        ),
        (
            "claims lost to a colleague / answered 409 but mine / refused by four-eyes",
            f"{c.get('claims lost to a colleague', 0)} / {c.get('claims answered 409 but mine', 0)} / "
            f"{c.get('claims refused (FourEyesViolation)', 0)}",
        ),
        ("runs rescheduled after a lost lease", str(c["rescheduled runs"])),
        ("refunds / stock reservation lines", f"{c['refunds']} / {c['reservation lines']}"),
        (
            "drain (staff finish) / settle",
            f"{figures['drain_s']} s / {figures['settle_s']} s"
            + (f" (still moving: {figures['still_moving']})" if any(figures["still_moving"].values()) else ""),
        ),
        ("wall time", f"{figures['wall_s']} s"),
        *closing_rows(figures),
        *check_rows(figures["checks"]),
    ]


def print_report(figures: dict[str, Any]) -> None:
    """Print the kills, the rows and the offenders past the first eight of each check."""
    print(f"{'#':>3}  {'at (s)':>7}  {'clock':<8}  {'what':<11} {'how':<22} back after (s)")
    for n, kill in enumerate(figures["kills"], 1):
        print(
            f"{n:>3}  {kill.at_s:>7.1f}  {kill.clock:<8}  {kill.what:<11} {kill.how:<22} "
            f"{kill.back_after_s} {kill.note}"
        )
    if figures["chaos_error"]:
        print(f"chaos thread stopped on: {figures['chaos_error']}")
    print_rows(table(figures))
    for check in figures["checks"]:
        for offender in check.offenders[8:40]:
            print(f"    {check.name[:40]}…: {offender}")
    if figures["running_while_waiting"]:
        print(
            f"note: {len(figures['running_while_waiting'])} active instance(s) say 'running' while their run waits: "
            f"{figures['running_while_waiting'][:10]}"
        )


def parse_interval(text: str) -> tuple[float, float]:
    """Parse --kill-every's 'A-B' seconds."""
    low, _, high = text.partition("-")
    interval = (float(low), float(high or low))
    if not 0 < interval[0] <= interval[1]:
        raise argparse.ArgumentTypeError(f"--kill-every wants A-B seconds with 0 < A <= B, not {text!r}")
    return interval


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a run: what was done under which faults, and the checks."""
    c, checks = figures["counts"], figures["checks"]
    kinds = Counter(k.what for k in figures["kills"] if k.injected)
    failed = [check.name for check in checks if not check.passed]
    kept = next(check for check in checks if check.name.startswith("every completion answered 200 is in the DB"))
    answered = c["completes answered 200"]
    return Entry(
        benchmark="chaos",
        setting=setting,
        ratio=(
            f"no fault-free baseline: checks passed {len(checks) - len(failed)} of {len(checks)}"
            + (f" (failed: {'; '.join(failed)})" if failed else "")
            + f"; completes answered 200 and kept {answered - len(kept.offenders)} of {answered}"
        ),
        rows=[
            (
                "instances started (returns / presales) → states at the end",
                f"{c['instances'].get('returns_exchange', 0)} / {c['instances'].get('presales_order', 0)} → "
                + ", ".join(f"{s} {n}" for s, n in sorted(c["instance states"].items())),
            ),
            ("kills done", f"{sum(kinds.values())} ({', '.join(f'{w} {n}' for w, n in sorted(kinds.items()))})"),
            ("steps completed (tasks) / completes answered 200", f"{c['steps completed']} / {answered}"),
            (
                "requests / retries / 5xx / connection errors / gave up",
                " / ".join(str(c.get(k, 0)) for k in ("requests", "retries", "5xx", "connection errors", "gave up")),
            ),
            ("log lines ERROR / WARNING", log_counts_text(figures["logs"])),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chaos from the command line; print its report (--record: record it too); return 1 on a failed check."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)  # the Prefect server keeps SQLite; the env is CHAOS_ENV
    parser.add_argument(
        "--instances", type=int, default=40, help="instances to start, half returns, half pre-sales orders"
    )
    parser.add_argument(
        "--duration", type=float, default=180, help="seconds of chaos (instances start in the first half)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the kills, the instances and every person's choices")
    parser.add_argument(
        "--kill-every", type=parse_interval, default=(8.0, 20.0), metavar="A-B", help="seconds between kills"
    )
    parser.add_argument("--no-pg-restart", action="store_true", help="on postgresql, do not restart PostgreSQL itself")
    parser.add_argument(
        "--drain", type=float, default=None, help="seconds staff keep working after the chaos (default duration/4, ≥20)"
    )
    args = parser.parse_args(argv)
    figures = run(
        args.db,
        instances=args.instances,
        duration=args.duration,
        seed=args.seed,
        kill_every=args.kill_every,
        restart_postgresql=False if args.no_pg_restart else None,
        drain=args.drain,
        keep_data=args.keep,
    )
    print_report(figures)
    failed = [c.name for c in figures["checks"] if not c.passed]
    if args.record:
        record_run(
            entry(figures, setting=setting_of(args)),
            module="bench.chaos",
            argv=argv,
            load_before=figures["load_before"],
        )
    print(
        "RESULT:",
        "PASS"
        if not failed and not figures["chaos_error"]
        else f"FAIL ({', '.join(failed) or figures['chaos_error']})",
    )
    return 1 if failed or figures["chaos_error"] else 0


if __name__ == "__main__":
    sys.exit(main())
