"""The production layout the README describes: Prefect on PostgreSQL, two API replicas and two workers.

PostgreSQL lane only: SQLite is the one-machine layout. The package's stack gives the Prefect server (on
its own PostgreSQL database on this lane); its API and worker are stopped for this module and replaced by
two replicas of each, then brought back.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, FlowRunLease, HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.orchestrator.worker import TAKE_OVER, TAKE_REFUSED
from ecomflow.engine.people.users import set_password
from ecomflow.services import Service
from tests.conftest import BACKEND
from tests.e2e.conftest import COMMON_ENV, LOG_DIR, Stack, Staff, free_port, prefect_api, wait_until
from tests.factories import make_user, return_params

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(BACKEND != "postgresql", reason="the production layout runs on PostgreSQL"),
]

PASSWORD = "layout-horse-42"
INSTANCES = 6
RUN_URL = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")
RUN_ID = re.compile(r"flow run ([0-9a-f-]{36})")


@dataclass
class Layout:
    """Two API replicas sharing one web secret (nothing else: each has its own data dir) and two workers."""

    apis: dict[str, Service]
    workers: dict[str, Service]
    urls: dict[str, str]

    def worker_logs(self) -> dict[str, str]:
        return {name: worker.log_path.read_text(errors="replace") for name, worker in self.workers.items()}


@pytest.fixture(scope="module")
def layout(stack: Stack) -> Iterator[Layout]:
    secret = secrets.token_urlsafe(32)
    run_id = uuid.uuid4().hex[:6]
    urls, apis, workers, data_dirs = {}, {}, {}, []
    for replica in ("a", "b"):
        port = free_port()
        urls[replica] = f"http://127.0.0.1:{port}"
        env = {
            **COMMON_ENV,
            "ECOMFLOW_API_PORT": str(port),
            "ECOMFLOW_WEB_SECRET": secret,
            # Replicas on different machines: no shared data dir, so no shared key file to sign cookies with.
            "ECOMFLOW_DATA_DIR": tempfile.mkdtemp(prefix=f"ecomflow-replica-{replica}-"),
        }
        data_dirs.append(env["ECOMFLOW_DATA_DIR"])
        apis[replica] = Service(
            name=f"api-{replica}",
            argv=[sys.executable, "-m", "ecomflow.cli", "api"],
            env=env,
            health_url=f"{urls[replica]}/health",
            log_path=LOG_DIR / f"layout-{run_id}-api-{replica}.log",
        )
        workers[replica] = Service(
            name=f"worker-{replica}",
            argv=[sys.executable, "-m", "ecomflow.cli", "worker"],
            env={**COMMON_ENV, "ECOMFLOW_WEB_SECRET": secret},
            log_path=LOG_DIR / f"layout-{run_id}-worker-{replica}.log",
        )
    stack.worker.stop()
    stack.api.stop()
    running = [*apis.values(), *workers.values()]
    try:
        for service in running:
            service.start()
        for api in apis.values():
            api.wait_healthy(timeout=90)
        for name, worker in workers.items():
            wait_until(
                lambda worker=worker: "worker ready" in worker.log_path.read_text(errors="replace"),
                timeout=90,
                what=f"worker {name} to be ready",
            )
        for name, worker in workers.items():
            # Each worker counts both as live (worker_presence.py), so each takes its own share of the runs.
            wait_until(
                lambda worker=worker: re.search(r"live workers: \S+, \S+$", worker.log_path.read_text(), re.M),
                timeout=30,
                what=f"worker {name} to see both workers live",
            )
        yield Layout(apis=apis, workers=workers, urls=urls)
    finally:
        for service in reversed(running):
            service.stop()
        for data_dir in data_dirs:
            shutil.rmtree(data_dir, ignore_errors=True)
        stack.api.start()
        stack.worker.start()
        stack.api.wait_healthy(timeout=90)


@pytest.fixture(scope="module")
def people(layout: Layout) -> Iterator[dict[str, dict[str, Staff]]]:
    """A customer-service agent and a warehouse worker, each able to use either replica with one token."""
    staff: dict[str, dict[str, Staff]] = {}
    for key, role in (("cs", "customer_service"), ("warehouse", "warehouse")):
        principal, token = make_user(roles=(role,))
        with session_scope() as session:
            set_password(session, name=principal.name, password=PASSWORD)
        staff[key] = {replica: Staff(url, principal.name, token) for replica, url in layout.urls.items()}
    yield staff
    for by_replica in staff.values():
        for person in by_replica.values():
            person.http.close()


def _states(flow_run_id: str) -> list[tuple[str, str]]:
    """The run's states in order, as (type, name)."""
    response = prefect_api("GET", "/flow_run_states/", params={"flow_run_id": flow_run_id})
    response.raise_for_status()
    ordered = sorted(response.json(), key=lambda state: state["timestamp"])
    return [(state["type"], state["name"]) for state in ordered]


def _state(flow_run_id: str) -> str:
    response = prefect_api("GET", f"/flow_runs/{flow_run_id}")
    response.raise_for_status()
    return response.json()["state"]["type"]


def _takes(states: list[tuple[str, str]]) -> int:
    """Count the run's takes, asserting each began from Scheduled and ran once: Scheduled → Running.

    The embedded server guards a take to Running (ecomflow/prefect_takes.py), so the workers skip Pending; a
    Running after AwaitingRetry is a retry within the same execution, not a take.
    """
    assert all(kind != "PENDING" for kind, _ in states), states
    takes = 0
    for (before, before_name), (after, _) in pairwise(states):
        if after == "RUNNING":
            assert before == "SCHEDULED", states  # never Running → Running: no run taken twice at once
            takes += before_name != "AwaitingRetry"
    return takes


def _executions(logs: dict[str, str]) -> dict[str, Counter]:
    """Per worker: how many executions of each flow run it began (Prefect logs a run's URL as each begins)."""
    return {name: Counter(RUN_URL.findall(text)) for name, text in logs.items()}


def _count(model, *conditions) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*conditions))


def _walk_return(people: dict[str, dict[str, Staff]], instance_id: str, *, on: tuple[str, str]) -> dict[str, Any]:
    """Do the three steps of a return, the review on one replica and the next steps on the other."""
    first, other = on
    cs, warehouse = people["cs"], people["warehouse"]
    cs[first].do(cs[other].wait_for_task(instance_id, "cs_review")["id"], {"decision": "approve"})
    cs[other].do(
        cs[first].wait_for_task(instance_id, "await_parcel")["id"],
        {"return_tracking_no": "SF0000111222", "return_shipping_cost": 10},
    )
    warehouse[first].do(
        warehouse[other].wait_for_task(instance_id, "inspect")["id"], {"condition": "ok", "restock": "yes"}
    )
    return cs[other].wait_for_state(instance_id, "completed", timeout=120)


class TestProductionLayout:
    def test_processes_complete_with_each_run_executed_by_one_worker_at_a_time(
        self, layout: Layout, people: dict[str, dict[str, Staff]]
    ) -> None:
        cs = people["cs"]
        replicas = [("a", "b"), ("b", "a")]
        started = [
            cs[replicas[n % 2][0]].start_return(return_params(), business_key=f"LAY-{uuid.uuid4().hex[:6]}")
            for n in range(INSTANCES)
        ]
        for n, instance in enumerate(started):
            finished = _walk_return(people, instance["id"], on=replicas[n % 2])
            assert finished["result"]["outcome"] == "refunded"

        executions = _executions(layout.worker_logs())
        for instance in started:
            flow_run_id = cs["a"].instance(instance["id"])["flow_run_id"]
            states = _states(flow_run_id)
            assert states[-1][0] == "COMPLETED", states
            # A start and three resumes: four takes, each executed once, by one of the two workers.
            takes = _takes(states)
            assert takes == 4, states
            assert sum(executions[worker][flow_run_id] for worker in executions) == takes, executions
        # Both workers took part.
        assert all(sum(counts.values()) > 0 for counts in executions.values()), executions
        # And did not race for the same runs: a take is refused only for a run one took over from the other's share
        # once it had waited past the grace (a worker slow to take its first runs). Racing, every run is at stake.
        lines = [line for log in layout.worker_logs().values() for line in log.splitlines()]
        refused = {match for line in lines if TAKE_REFUSED in line for match in RUN_ID.findall(line)}
        taken_over = {match for line in lines if TAKE_OVER in line for match in RUN_ID.findall(line)}
        assert refused <= taken_over, (refused, taken_over)

    def test_a_sign_in_made_on_one_replica_works_on_the_other(
        self, layout: Layout, people: dict[str, dict[str, Staff]]
    ) -> None:
        name = people["cs"]["a"].name
        with httpx.Client(base_url=layout.urls["a"], timeout=30) as on_a:
            login = on_a.get("/ui/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token, login.text
            form = {"csrf_token": token.group(1), "name": name, "password": PASSWORD, "next": "/ui"}
            signed_in = on_a.post("/ui/login", data=form)
            assert signed_in.status_code == 303, signed_in.text
            cookies = dict(on_a.cookies)
        with httpx.Client(base_url=layout.urls["b"], timeout=30) as stranger:
            assert stranger.get("/ui").status_code in (302, 303)  # without the cookie: off to sign in
        with httpx.Client(base_url=layout.urls["b"], timeout=30, cookies=cookies) as on_b:
            inbox = on_b.get("/ui")
            assert inbox.status_code == 200, inbox.text
            assert name in inbox.text
            sessions = on_b.get("/ui/login")  # signed in: the sign-in page sends the visitor on
            assert sessions.status_code in (302, 303) and sessions.headers["location"].endswith("/ui")

    def test_a_worker_killed_mid_run_is_recovered_by_the_other(
        self, layout: Layout, people: dict[str, dict[str, Staff]], database_url: str
    ) -> None:
        cs = people["cs"]
        # Hold the run mid-execution: its first task cannot be written while the table is locked against writes.
        with psycopg.connect(database_url) as blocker:
            blocker.execute("LOCK TABLE human_tasks IN EXCLUSIVE MODE")
            started = cs["a"].start_return(return_params(), business_key=f"KILL-{uuid.uuid4().hex[:6]}")
            flow_run_id = wait_until(
                lambda: cs["b"].instance(started["id"])["flow_run_id"], timeout=30, what="the flow run"
            )
            lease = wait_until(lambda: _lease(flow_run_id), timeout=60, what="a worker to take the run")
            # Mid-run: Prefect has it Running, and its first task is not written (the lock holds the write back).
            wait_until(lambda: _state(flow_run_id) == "RUNNING", timeout=60, what="the run to be running")
            assert _count(HumanTask, HumanTask.instance_id == started["id"]) == 0
            pid = int(lease.worker_id.split(":")[1])
            victim = next(name for name, worker in layout.workers.items() if worker.process.pid == pid)
            survivor = next(name for name in layout.workers if name != victim)
            # Its execution began (Prefect logs the run's URL just after it is Running): count it below.
            wait_until(
                lambda: flow_run_id in layout.worker_logs()[victim], timeout=30, what="the victim to log the run"
            )
            layout.workers[victim].kill()
            blocker.rollback()

        rescheduled = (AuditEvent.instance_id == started["id"], AuditEvent.type == "instance.run_rescheduled")
        wait_until(lambda: _count(AuditEvent, *rescheduled) == 1, timeout=60, what="the survivor to reschedule the run")
        finished = _walk_return(people, started["id"], on=("b", "a"))
        assert finished["result"]["outcome"] == "refunded"
        assert _count(HumanTask, HumanTask.instance_id == started["id"], HumanTask.step_key == "cs_review") == 1

        states = _states(flow_run_id)
        # Taken by the victim, handed back, then the survivor's three more takes after the start.
        assert _takes(states) == 5, states
        executions = _executions(layout.worker_logs())
        assert executions[victim][flow_run_id] == 1, executions
        assert executions[survivor][flow_run_id] == 4, executions


def _lease(flow_run_id: str) -> FlowRunLease | None:
    with session_scope() as session:
        lease = session.get(FlowRunLease, flow_run_id)
        if lease is not None:
            session.expunge(lease)
        return lease
