"""End-to-end stack: a real Prefect server, the API and the flow worker as separate processes."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness.prefect_home import seed_prefect_home
from ecomflow.services import Service
from tests.conftest import BACKEND, DATA_DIR, PG_ADMIN_URL, _admin_execute, empty_all_tables
from tests.factories import make_user
from tests.images import picture


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PREFECT_PORT = free_port()
API_PORT = free_port()
PREFECT_API = f"http://127.0.0.1:{PREFECT_PORT}/api"
LOG_DIR = Path(os.environ.get("ECOMFLOW_TEST_LOG_DIR", DATA_DIR / "logs"))
LOG_DIR.mkdir(parents=True, exist_ok=True)
COMMON_ENV = {
    "PREFECT_API_URL": PREFECT_API,
    "PREFECT_HOME": str(DATA_DIR / "prefect-home"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "ECOMFLOW_DATA_DIR": str(DATA_DIR),
    "ECOMFLOW_DATABASE_URL": os.environ["ECOMFLOW_DATABASE_URL"],
    "ECOMFLOW_API_PORT": str(API_PORT),
    "ECOMFLOW_PREFECT_PORT": str(PREFECT_PORT),
    # Prefect's events wake the worker for new and resumed runs; the poll only finds runs that became due. Each
    # poll costs the Prefect server ~14 ms of CPU: idle, this stack used 13.5 CPU-s a minute at 0.1 s, 6.6 at 0.5.
    "ECOMFLOW_WORKER_POLL_SECONDS": "0.5",
    "ECOMFLOW_DISPATCHER_POLL_SECONDS": "0.3",
    "ECOMFLOW_SWEEPER_POLL_SECONDS": "1",
    # Short leases, so the recovery of runs a dead worker left behind shows within seconds.
    "ECOMFLOW_RUN_LEASE_SECONDS": "3",
    # The pushed feed's source `erp` and its signing secret (tests/e2e/test_platform_cases.py).
    "ECOMFLOW_INBOUND_SECRETS": '{"erp": "e2e-erp-secret"}',
}


# On the PostgreSQL lane Prefect keeps its own database on PostgreSQL too, as the production layout does: a fresh
# database for the session (Prefect migrates it on its first start), dropped at the end. On SQLite it stays a file
# in PREFECT_HOME, seeded from the migrated template.
PREFECT_PG_DATABASE = f"ecomflow_test_prefect_{uuid.uuid4().hex[:10]}" if BACKEND == "postgresql" else None
if PREFECT_PG_DATABASE is not None:
    COMMON_ENV["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
        PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{PREFECT_PG_DATABASE}"
    )


@pytest.fixture(scope="session")
def prefect_database() -> Iterator[str | None]:
    """Create Prefect's PostgreSQL database for the session (none on SQLite) and drop it afterwards."""
    if PREFECT_PG_DATABASE is None:
        yield None
        return
    _admin_execute(f'CREATE DATABASE "{PREFECT_PG_DATABASE}"')
    try:
        yield COMMON_ENV["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{PREFECT_PG_DATABASE}" WITH (FORCE)')


def prefect_service() -> Service:
    return Service(
        name="prefect-server",
        argv=[sys.executable, "-m", "ecomflow.prefect_server", "--host", "127.0.0.1", "--port", str(PREFECT_PORT)],
        env=COMMON_ENV,
        health_url=f"{PREFECT_API}/health",
        log_path=LOG_DIR / "prefect-server.log",
    )


def api_service() -> Service:
    return Service(
        name="api",
        argv=[sys.executable, "-m", "ecomflow.cli", "api"],
        env=COMMON_ENV,
        health_url=f"http://127.0.0.1:{API_PORT}/health",
        log_path=LOG_DIR / "api.log",
    )


def worker_service() -> Service:
    return Service(
        name="worker",
        argv=[sys.executable, "-m", "ecomflow.cli", "worker"],
        env=COMMON_ENV,
        log_path=LOG_DIR / "worker.log",
    )


@dataclass
class Stack:
    """The running processes, so tests can stop, kill and restart them."""

    prefect: Service
    api: Service
    worker: Service
    api_url: str = f"http://127.0.0.1:{API_PORT}"


# Package scope: the worker must be gone before later tests empty the tables under it.
@pytest.fixture(scope="package")
def stack(database_url: str, prefect_database: str | None) -> Iterator[Stack]:
    empty_all_tables()  # leftovers of earlier tests (e.g. undelivered starts) must not reach this worker
    previous_api_url = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = PREFECT_API  # the test process reads runs from the same server
    running = Stack(prefect=prefect_service(), api=api_service(), worker=worker_service())
    seed_prefect_home(Path(COMMON_ENV["PREFECT_HOME"]), COMMON_ENV)
    running.prefect.start()
    try:
        running.prefect.wait_healthy(timeout=180)
        running.api.start()
        running.worker.start()
        running.api.wait_healthy(timeout=60)
        yield running
    finally:
        # Tests replace the stack's API and worker (a restart, a deploy): stop the ones running now, or a
        # leftover sweeper keeps working on the test database under later tests.
        for service in (running.worker, running.api, running.prefect):
            service.stop()
        if previous_api_url is not None:
            os.environ["PREFECT_API_URL"] = previous_api_url


class Staff:
    """A person using the inbox over HTTP."""

    def __init__(self, base_url: str, name: str, token: str) -> None:
        self.name = name
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def start(self, process: str, params: dict[str, Any], business_key: str) -> dict[str, Any]:
        response = self.post(f"/processes/{process}/instances", json={"business_key": business_key, "params": params})
        assert response.status_code == 201, response.text
        return response.json()

    def start_return(self, params: dict[str, Any], business_key: str) -> dict[str, Any]:
        return self.start("returns_exchange", params, business_key)

    def wait_for_task(self, instance_id: str, step: str, *, round: int = 1, timeout: float = 60) -> dict[str, Any]:
        """Poll the instance until the step's task is open, as a person refreshing the inbox would."""
        return wait_until(
            lambda: self._open_task(instance_id, step, round), timeout=timeout, what=f"task {step} of {instance_id}"
        )

    def _open_task(self, instance_id: str, step: str, round: int) -> dict[str, Any] | None:
        response = self.get("/tasks", params={"state": "open", "limit": 200, "sort": "-created"})
        assert response.status_code == 200, response.text
        for task in response.json()["items"]:
            if task["instance_id"] == instance_id and task["step"] == step and task["round"] == round:
                return task
        return None

    def upload(self, data: bytes | None = None, name: str = "photo.jpg") -> str:
        """Upload a file (a white-background 800×800 JPEG unless given); return its attachment id."""
        response = self.post("/attachments", files={"file": (name, picture() if data is None else data)})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def do(self, task_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Claim and complete a task."""
        claimed = self.post(f"/tasks/{task_id}/claim")
        assert claimed.status_code == 200, claimed.text
        done = self.post(f"/tasks/{task_id}/complete", json={"data": data})
        assert done.status_code == 200, done.text
        return done.json()

    def instance(self, instance_id: str) -> dict[str, Any]:
        response = self.get(f"/instances/{instance_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_state(self, instance_id: str, state: str, *, timeout: float = 60) -> dict[str, Any]:
        def in_state() -> dict[str, Any] | None:
            instance = self.instance(instance_id)
            return instance if instance["state"] == state else None

        return wait_until(in_state, timeout=timeout, what=f"instance {instance_id} in state {state}")


def processes_using(marker: str) -> list[int]:
    """Return pids whose environment mentions the marker (a unique data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def is_up(api_url: str) -> bool:
    """Tell whether the API answers /health and reaches its Prefect server."""
    try:
        response = httpx.get(f"{api_url}/health", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json()["prefect"] == "ok"


def wait_until(probe: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def prefect_api(method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the Prefect API, waiting out the 503s its SQLite database answers while locked."""

    def attempt() -> httpx.Response | None:
        response = httpx.request(method, f"{PREFECT_API}{path}", timeout=10, **kwargs)
        return None if response.status_code == 503 else response

    return wait_until(attempt, timeout=30, what=f"Prefect {method} {path}", interval=0.5)


def prefect_run_state(flow_run_id: str) -> dict[str, Any]:
    """Return the current state of a flow run."""
    response = prefect_api("GET", f"/flow_runs/{flow_run_id}")
    response.raise_for_status()
    return response.json()["state"]


@pytest.fixture(scope="package")
def team(stack: Stack) -> dict[str, Staff]:
    """One user per role, and a second one of each role that approves its own kind of work."""
    people = {
        "cs": ("customer_service",),
        "cs2": ("customer_service",),
        "warehouse": ("warehouse",),
        "warehouse2": ("warehouse",),
        "ops": ("operations",),
        "ops2": ("operations",),
        "owner": ("owner",),
        "product": ("product",),
        "product2": ("product",),
        "promotion": ("promotion",),
        "promotion2": ("promotion",),
        "visual": ("visual",),
        "visual2": ("visual",),
    }
    staff = {}
    for key, roles in people.items():
        principal, token = make_user(roles=roles)
        staff[key] = Staff(stack.api_url, principal.name, token)
    return staff
