"""The throughput load on a bare Prefect served deployment: what Prefect alone does with the same work.

A fresh Prefect server of its own (SQLite in a temp PREFECT_HOME, or a fresh PostgreSQL database
with --prefect-db postgresql) and `python -m bench.bare_flows`, which serves bare_return (3 human
steps, 4 when damaged) and bare_presales (4) with `prefect.serve`: the default runner, a new
process per flow-run execution. Each human step is a `suspend_flow_run(wait_for_input=...)`.
The same staff, feeder and observer as bench.throughput (bench.harness.load) drive it: a person's inbox is
POST /api/flow_runs/filter (Paused runs, oldest first), taking an item is an in-process mark (Prefect has no
claim), completing it is POST /api/flow_runs/{id}/resume with the run_input; the feeder creates
flow runs from the deployments; the observer reads the Prefect server's database every 0.1 s.
Run it through `python -m bench.throughput --compare-bare` (or --bare-only).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.bare_flows import DEPLOYMENT
from bench.harness.databases import pg_database
from bench.harness.load import Desk, Item, Recorder, StackSystem, is_damaged, measure, staff_roles
from bench.harness.logs import finish_data_dir, log_figures, log_problems, make_data_dir
from bench.harness.prefect_home import seed_prefect_home
from bench.harness.profiles import PREFECT_ACCESS_LOG_ENV
from bench.harness.sampling import loadavg
from bench.harness.services import QUIET_PREFECT_ENV, IsolatedService, ProcessGroup, free_port, stop_all
from bench.harness.stack import prefect_database_env
from ecomflow.sample_data import FIRST_SKU

FLOWS = ("bare_return", "bare_presales")
# What serves the bare side's Prefect API: ecomflow's settings of the server, or Prefect's own defaults.
SERVER_COMMANDS = {"ecomflow": ["-m", "ecomflow.prefect_server"], "prefect": ["-m", "prefect", "server", "start"]}
ROLE_OF_STEP = {
    "cs_review": "customer_service",
    "await_parcel": "customer_service",
    "inspect": "warehouse",
    "deduction_approval": "operations",
    "answer_inquiry": "customer_service",
    "print_and_pick": "warehouse",
    "verify_and_pack": "warehouse",
    "ship": "warehouse",
}
INPUT = {
    "cs_review": {"decision": "approve", "comment": "同意"},
    "deduction_approval": {"decision": "approve", "comment": "同意"},
    "await_parcel": {"return_tracking_no": "SF1234567890", "carrier": "SF"},
    "answer_inquiry": {
        "outcome": "ordered",
        "order_id": "ORD-DEMO-0001",
        "order_lines": [{"sku": FIRST_SKU, "quantity": 1}],
        "fulfilment": "ship",
    },
    "print_and_pick": {"waybill_no": "YT0001"},
    "verify_and_pack": {"packages": 1},
    "ship": {"carrier": "SF", "tracking_no": "SF0001"},
}
ENDED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass
class BareStack(ProcessGroup):
    """A running Prefect server and the served bare flows."""

    data_dir: Path
    prefect_api: str
    prefect: IsolatedService
    runner: IsolatedService
    prefect_pg_url: str | None  # None: SQLite in the Prefect home
    deployments: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    log_report: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_postgres(self) -> bool:
        """Whether the Prefect server's database is on PostgreSQL."""
        return self.prefect_pg_url is not None

    def services(self) -> dict[str, IsolatedService]:
        """Return the stack's processes by name."""
        return {"runner": self.runner, "prefect": self.prefect}


def _deployment_ids(stack: BareStack, timeout: float) -> dict[str, str]:
    """Wait until the runner has served both flows; return each one's deployment id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        found = {}
        for name in FLOWS:
            response = httpx.get(f"{stack.prefect_api}/deployments/name/{name}/{DEPLOYMENT}", timeout=5)
            if response.status_code == 200:
                found[name] = response.json()["id"]
        if len(found) == len(FLOWS):
            return found
        time.sleep(0.3)
    raise TimeoutError(f"the bare deployments were not served within {timeout:.0f}s; see {stack.runner.log_path}")


@contextmanager
def bare_stack(
    prefect_db: str = "sqlite",
    *,
    poll_seconds: int = 1,
    server: str = "ecomflow",
    keep_data: bool = False,
    startup_timeout: float = 180,
) -> Iterator[BareStack]:
    """Start a fresh Prefect server and serve the bare flows; stop and remove everything afterwards.

    server "ecomflow" runs it as ecomflow's stack does (ecomflow.prefect_server: SQLite writers begin IMMEDIATE,
    the late-runs and pause-expirations services off), so a comparison differs only in what runs the flows;
    "prefect" runs stock `prefect server start`, to show what those settings alone explain.
    """
    data_dir = make_data_dir("ecomflow-bench-bare-")
    stack, failed = None, True
    try:
        with ExitStack() as resources:
            pg_url = (
                resources.enter_context(pg_database("ecomflow_bench_prefect")) if prefect_db == "postgresql" else None
            )
            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            env = {
                "PREFECT_HOME": str(data_dir / "prefect-home"),
                **QUIET_PREFECT_ENV,
                "PREFECT_API_URL": api,
                "PREFECT_RUNNER_POLL_FREQUENCY": str(poll_seconds),
                **prefect_database_env(pg_url),
            }
            prefect = IsolatedService(
                name="prefect-server",
                env={**env, **PREFECT_ACCESS_LOG_ENV},
                health_url=f"{api}/health",
                log_path=data_dir / "logs" / "prefect-server.log",
                argv=[sys.executable, *SERVER_COMMANDS[server], "--host", "127.0.0.1", "--port", str(port)],
            )
            runner = IsolatedService(
                name="runner",
                env=env,
                argv=[sys.executable, "-m", "bench.bare_flows"],
                log_path=data_dir / "logs" / "runner.log",
            )
            started_services: list[IsolatedService] = []
            # Registered after the database, so the processes stop before it is dropped.
            resources.callback(stop_all, started_services)
            seed_prefect_home(data_dir / "prefect-home", env)
            started = time.monotonic()
            started_services.append(prefect)
            prefect.start()
            prefect.wait_healthy(timeout=startup_timeout)
            timings = {"prefect_start_s": round(time.monotonic() - started, 2)}
            started_services.append(runner)
            runner.start()
            stack = BareStack(
                data_dir=data_dir,
                prefect_api=api,
                prefect=prefect,
                runner=runner,
                prefect_pg_url=pg_url,
                timings=timings,
            )
            stack.deployments = _deployment_ids(stack, timeout=120)
            timings["runner_ready_s"] = round(time.monotonic() - started - timings["prefect_start_s"], 2)
            yield stack
            failed = False
    finally:
        if stack is not None:
            stack.log_report = log_problems(stack.log_dir)
        # (Stopping the runner crashes the runs it executes: ERROR lines are expected here.)
        finish_data_dir(data_dir, keep=keep_data or failed)


class BareDesk:
    """One member of staff working straight on Prefect: paused runs are the inbox, a resume completes."""

    def __init__(
        self,
        stack: BareStack,
        role: str,
        roles: list[str],
        taken: set[tuple[str, str]],
        lock: threading.Lock,
        recorder: Recorder,
    ) -> None:
        self.http = httpx.Client(base_url=stack.prefect_api, timeout=30)
        self.role, self.roles, self.taken, self.lock, self.recorder = role, roles, taken, lock, recorder
        self.flow_names = {value: key for key, value in stack.deployments.items()}

    def inbox(self) -> list[Item]:
        """Return the paused runs waiting on my role, oldest first (operations help with the rest)."""
        body = {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        response = self.http.post("/flow_runs/filter", json=body)
        if not self.recorder.call("POST flow_runs/filter", response.status_code, response.status_code == 200):
            return []
        items = []
        for run in response.json():
            key = run["state"]["state_details"]["pause_key"] or ""
            items.append(
                Item(
                    run["id"],
                    f"{run['id']}:{key}",
                    self.flow_names.get(run["deployment_id"], "?"),
                    key.replace("-", "_"),
                )
            )
        mine = [i for i in items if ROLE_OF_STEP.get(i.step) == self.role]
        if not mine and self.role == "operations":
            mine = [i for i in items if i.step != "inspect"]
        return mine

    def take(self, item: Item) -> bool:
        """Mark the paused run as mine (Prefect has no claim); return whether nobody had it."""
        with self.lock:
            if item.point in self.taken:
                return False
            self.taken.add(item.point)
            return True

    def complete(self, item: Item) -> bool:
        """Resume the run with the step's input; return whether Prefect accepted it."""
        data = dict(INPUT.get(item.step, {}))
        if item.step == "inspect":
            damaged = is_damaged(item.instance, self.roles)
            data = {"condition": "damaged" if damaged else "ok", "restock": "yes", "deduction": 10 if damaged else 0}
        response = self.http.post(f"/flow_runs/{item.instance}/resume", json={"run_input": data})
        answer = response.json() if response.status_code in (200, 201) else {}
        if answer.get("status") == "ACCEPT":
            return self.recorder.call("POST resume", response.status_code, True)
        # E.g. "Run input schema not found.": the run shows Paused a moment before its input schema is saved.
        reason = (answer.get("details") or {}).get("reason") or response.text[:80]
        with self.lock:
            self.taken.discard(item.point)  # someone tries again later
        return self.recorder.call(
            "POST resume", response.status_code, False, reason=f"{answer.get('status', '')} {reason}".strip()
        )


class BareSystem(StackSystem):
    """The bare served deployment; the observer reads the Prefect server's own database."""

    name = "bare"
    staff_use_prefect = True

    def __init__(self, stack: BareStack, roles: list[str]) -> None:
        self.stack, self.roles = stack, roles
        self.starter = httpx.Client(base_url=stack.prefect_api, timeout=30)
        self._db_lock = threading.Lock()
        self._pg = None
        if stack.prefect_pg_url:
            import psycopg

            self._pg = psycopg.connect(stack.prefect_pg_url, autocommit=True)

    def desks(self, recorder: Recorder) -> list[Desk]:
        """Return one desk per member of staff, sharing what is taken."""
        taken: set[tuple[str, str]] = set()
        lock = threading.Lock()
        return [BareDesk(self.stack, role, self.roles, taken, lock, recorder) for role in self.roles]

    def start_one(self, number: int, recorder: Recorder) -> str:
        """Create a run of a bare return or pre-sales order, in turn; return its id."""
        flow = FLOWS[number % len(FLOWS)]
        parameters = (
            {"order_id": f"ORD-{uuid.uuid4().hex[:8]}"} if flow == "bare_return" else {"customer": f"顾客{number}"}
        )
        response = self.starter.post(
            f"/deployments/{self.stack.deployments[flow]}/create_flow_run", json={"parameters": parameters}
        )
        recorder.call("POST create_flow_run", response.status_code, response.status_code == 201)
        response.raise_for_status()
        return response.json()["id"]

    def _query(self, sql: str) -> list[tuple]:
        """Run a read on the Prefect server's own database."""
        with self._db_lock:
            if self._pg is not None:
                return self._pg.execute(sql).fetchall()
            path = Path(self.stack.data_dir / "prefect-home" / "prefect.db")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute(sql).fetchall()

    def probe(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Return the (run, pause key) points paused now and the runs that ended."""
        rows = self._query(
            "SELECT fr.id, fr.state_type, frs.state_details "
            "FROM flow_run fr JOIN flow_run_state frs ON frs.id = fr.state_id "
            f"WHERE fr.state_type IN ('PAUSED', {', '.join(repr(s) for s in ENDED)})"
        )
        points, ends = [], []
        for raw_id, state, raw_details in rows:
            run_id = str(raw_id)
            if state == "PAUSED":
                details = json.loads(raw_details) if isinstance(raw_details, str) else raw_details
                points.append((run_id, f"{run_id}:{details.get('pause_key')}"))
            else:
                ends.append((run_id, str(state).lower()))
        return points, ends

    def pipeline(self) -> dict[str, int]:
        """Return the runs not yet waiting and the runs paused."""
        counts = Counter(
            {str(state): n for state, n in self._query("SELECT state_type, count(*) FROM flow_run GROUP BY state_type")}
        )
        return {
            "Prefect runs scheduled/pending/running": counts["SCHEDULED"] + counts["PENDING"] + counts["RUNNING"],
            "Prefect runs paused": counts["PAUSED"],
        }

    def close(self) -> None:
        """Close the connection to Prefect's PostgreSQL database, if any."""
        if self._pg is not None:
            self._pg.close()


def run_bare(
    *,
    staff: int,
    duration: float,
    warmup: float,
    in_flight: int,
    prefect_db: str = "sqlite",
    poll_seconds: int = 1,
    server: str = "ecomflow",
    keep_data: bool = False,
    profile: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Start a bare Prefect stack, load it like bench.throughput loads ours, stop it; return the figures."""
    roles, load_before = staff_roles(staff), loadavg()
    with bare_stack(prefect_db, poll_seconds=poll_seconds, server=server, keep_data=keep_data) as stack:
        system = BareSystem(stack, roles)
        try:
            figures = measure(
                system,
                warmup=warmup,
                duration=duration,
                in_flight=in_flight,
                profile=profile,
                profile_dir=stack.data_dir / "profiles",
                **options,
            )
        finally:
            system.close()
        figures["startup"] = dict(stack.timings)
        figures["stack_settings"] = {
            "runner_poll_s": poll_seconds,
            "serve_limit": "None",
            "prefect_db": prefect_db,
            "server": server,
        }
    figures.update(
        roles=Counter(roles), data_dir=str(stack.data_dir), load_before=load_before, **log_figures(stack.log_report)
    )
    return figures
