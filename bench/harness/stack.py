"""An isolated ecomflow stack for one benchmark run.

`isolated_stack()` makes a fresh temp data dir and a fresh database (a SQLite file, or a new
PostgreSQL database that is dropped afterwards), migrates it with alembic, creates the users, and
starts a real Prefect server (SQLite in its own PREFECT_HOME, or a PostgreSQL database of its own),
the API and the flow worker as separate process groups on free loopback ports. Everything is
stopped in a `finally`, and every wait is bounded.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness.databases import DB_CHOICES, database_size_bytes, fresh_database, migrate, pg_database, sqlite_path
from bench.harness.logs import finish_data_dir, log_figures, log_problems, make_data_dir
from bench.harness.prefect_api import count_flow_runs
from bench.harness.prefect_home import seed_prefect_home
from bench.harness.sampling import cpu_seconds_by_name, loadavg, tree_memory
from bench.harness.seeding import add_users
from bench.harness.services import QUIET_PREFECT_ENV, IsolatedService, ProcessGroup, check_alive, free_port, stop_all
from bench.harness.staff import Staff
from ecomflow.services import Service

# What the worker logs once every deployment is registered (ecomflow/worker_process.py).
WORKER_READY = "worker ready:"


def prefect_database_env(prefect_db_url: str | None) -> dict[str, str]:
    """Return the Prefect server's settings for a PostgreSQL database of its own: none for SQLite in its home."""
    if not prefect_db_url or prefect_db_url.startswith("sqlite"):
        return {}
    return {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    }


@dataclass
class BenchStack(ProcessGroup):
    """A running isolated stack."""

    db: str
    prefect_db: str
    data_dir: Path
    database_url: str
    prefect_db_url: str
    prefect_api: str
    api_url: str
    prefect: Service
    api: Service
    worker: Service
    tokens: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Workers beyond the first (--workers N), named worker-2, worker-3 …: production runs several.
    more_workers: list[Service] = field(default_factory=list)
    # Filled in after the processes have stopped (so shutdown lines are included).
    log_report: dict[str, Any] = field(default_factory=dict)

    def effective_settings(self) -> dict[str, str]:
        """Return the worker/dispatcher/sweeper settings the stack runs with (defaults unless overridden)."""
        from ecomflow.engine.config import Settings

        keys = ("worker_concurrency", "worker_poll_seconds", "dispatcher_poll_seconds", "sweeper_poll_seconds")
        return {key: self.env.get(f"ECOMFLOW_{key.upper()}", str(Settings.model_fields[key].default)) for key in keys}

    def staff(self, name: str) -> Staff:
        """Return one of the stack's users at the API."""
        return Staff(self.api_url, name, self.tokens[name])

    def db_size_bytes(self) -> int:
        """Return the size of our database: the SQLite file with its WAL, or pg_database_size."""
        return database_size_bytes(self.database_url)

    def sqlite_main_file_bytes(self) -> int | None:
        """Return the size of our SQLite file without its WAL (None on PostgreSQL)."""
        if self.db != "sqlite":
            return None
        path = sqlite_path(self.database_url)
        return path.stat().st_size if path.exists() else 0

    @property
    def uses_postgres(self) -> bool:
        """Whether ecomflow's or the Prefect server's database is on PostgreSQL."""
        return "postgresql" in (self.db, self.prefect_db)

    def prefect_db_size_bytes(self) -> int:
        """Return the size of the Prefect server's database: SQLite with its WAL, or pg_database_size."""
        return database_size_bytes(self.prefect_db_url)

    def cpu_seconds(self) -> dict[str, float]:
        """Return the CPU seconds each process group has used so far."""
        return cpu_seconds_by_name({name: service.process.pid for name, service in self.services().items()})

    def memory(self) -> dict[str, dict[str, Any]]:
        """Return the memory of each process group now."""
        return {name: tree_memory(service.process.pid) for name, service in self.services().items()}

    def services(self) -> dict[str, Service]:
        """Return the stack's processes by name."""
        more = {service.name: service for service in self.more_workers}
        return {"worker": self.worker, **more, "prefect": self.prefect, "api": self.api}

    def prefect_count(self, state_types: list[str], *, flow_name: str | None = None) -> int:
        """Count flow runs in the given Prefect state types."""
        return count_flow_runs(self.prefect_api, state_types, flow_name=flow_name)


def _wait_for_deployments(worker: Service, prefect_api: str, names: tuple[str, ...], timeout: float) -> None:
    """Wait until the worker has registered its deployments and logged "worker ready:" (its loop starts right after).

    The line is logged once register_deployments has returned for every implemented flow, so it is the
    condition itself: no window of a stable deployment count to sit out (that cost 2 s per stack start).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive({worker.name: worker})
        if _logged_ready(worker):
            try:
                if all(
                    httpx.get(f"{prefect_api}/deployments/name/{name}", timeout=5).status_code == 200 for name in names
                ):
                    return
            except httpx.HTTPError:
                pass  # the server is between answers: the loop asks again
        time.sleep(0.1)
    raise TimeoutError(f"the worker did not register {names} within {timeout:.0f}s; see {worker.log_path}")


def _logged_ready(worker: Service) -> bool:
    """Tell whether the worker's log has its "worker ready:" line (False while the log is not there yet)."""
    try:
        return WORKER_READY in worker.log_path.read_text(errors="replace")
    except OSError:
        return False


def _services(
    data_dir: Path, *, prefect_port: int, api_port: int, env: Mapping[str, str], prefect_server_env: Mapping[str, str]
) -> tuple[IsolatedService, IsolatedService, IsolatedService]:
    """Return the Prefect server, API and worker of a stack (not started)."""
    log_dir, prefect_api = data_dir / "logs", f"http://127.0.0.1:{prefect_port}/api"
    prefect = IsolatedService(
        name="prefect-server",
        argv=[sys.executable, "-m", "ecomflow.prefect_server", "--host", "127.0.0.1", "--port", str(prefect_port)],
        env={**env, **prefect_server_env},
        health_url=f"{prefect_api}/health",
        log_path=log_dir / "prefect-server.log",
    )
    api = IsolatedService(
        name="api",
        argv=[sys.executable, "-m", "ecomflow.cli", "api"],
        env=env,
        health_url=f"http://127.0.0.1:{api_port}/health",
        log_path=log_dir / "api.log",
    )
    worker = IsolatedService(
        name="worker", argv=[sys.executable, "-m", "ecomflow.cli", "worker"], env=env, log_path=log_dir / "worker.log"
    )
    return prefect, api, worker


@contextmanager
def isolated_stack(
    db: str = "sqlite",
    *,
    users: Mapping[str, tuple[str, ...]],
    env: Mapping[str, str] | None = None,
    keep_data: bool = False,
    startup_timeout: float = 180,
    prefect_db: str = "sqlite",
    prefect_server_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[BenchStack]:
    """Start a fresh stack, yield it, and stop and remove everything afterwards.

    users maps a user name to its roles; their tokens are in stack.tokens. env adds or
    overrides ECOMFLOW_* settings of the API and worker (e.g. poll intervals). prefect_db
    "postgresql" puts the Prefect server's own database in a fresh PostgreSQL database too
    (dropped afterwards) instead of SQLite in PREFECT_HOME. prefect_server_env adds settings of
    the Prefect server process only (e.g. PREFECT_ACCESS_LOG_ENV). workers > 1 runs more worker
    processes beside the first, as the production layout does. The data dir is kept when
    asked, when the run failed, or when a log has ERROR lines.
    """
    if db not in DB_CHOICES or prefect_db not in DB_CHOICES:
        raise ValueError(f"db and prefect_db must be one of {DB_CHOICES}, not {db!r}/{prefect_db!r}")
    data_dir = make_data_dir(f"ecomflow-bench-{db}-")
    saved_env = {key: os.environ.get(key) for key in ("ECOMFLOW_DATABASE_URL", "ECOMFLOW_DATA_DIR")}
    stack: BenchStack | None = None
    failed = True
    try:
        with ExitStack() as resources:
            database_url = resources.enter_context(fresh_database(db, data_dir))
            prefect_db_url = (
                resources.enter_context(pg_database("ecomflow_bench_prefect"))
                if prefect_db == "postgresql"
                else f"sqlite:///{data_dir / 'prefect-home' / 'prefect.db'}"
            )
            # Settings are read once per process: fix them before any engine module reads them.
            # (Everything below also passes the URL explicitly, so an already-configured caller works too.)
            os.environ["ECOMFLOW_DATABASE_URL"] = database_url
            os.environ["ECOMFLOW_DATA_DIR"] = str(data_dir)
            timings = {"migrate_s": round(migrate(database_url), 2)}
            tokens = add_users(database_url, users)

            prefect_port, api_port = free_port(), free_port()
            prefect_api = f"http://127.0.0.1:{prefect_port}/api"
            common_env = {
                "PREFECT_API_URL": prefect_api,
                "PREFECT_HOME": str(data_dir / "prefect-home"),
                **QUIET_PREFECT_ENV,
                "ECOMFLOW_DATABASE_URL": database_url,
                "ECOMFLOW_DATA_DIR": str(data_dir),
                "ECOMFLOW_API_HOST": "127.0.0.1",
                "ECOMFLOW_API_PORT": str(api_port),
                "ECOMFLOW_PREFECT_PORT": str(prefect_port),
                **prefect_database_env(prefect_db_url),
                **(env or {}),
            }
            prefect, api, worker = _services(
                data_dir,
                prefect_port=prefect_port,
                api_port=api_port,
                env=common_env,
                prefect_server_env=prefect_server_env or {},
            )
            more_workers = [
                IsolatedService(
                    name=f"worker-{number}",
                    argv=worker.argv,
                    env=common_env,
                    log_path=data_dir / "logs" / f"worker-{number}.log",
                )
                for number in range(2, workers + 1)
            ]
            started_services: list[Service] = []
            # Registered after the databases, so the processes stop before their databases are dropped.
            resources.callback(stop_all, started_services)
            seed_prefect_home(data_dir / "prefect-home", prefect.env)
            started = time.monotonic()
            started_services.append(prefect)
            prefect.start()
            prefect.wait_healthy(timeout=startup_timeout)
            timings["prefect_start_s"] = round(time.monotonic() - started, 2)
            started = time.monotonic()
            started_services.extend([api, worker, *more_workers])
            api.start()
            for each in (worker, *more_workers):
                each.start()
            api.wait_healthy(timeout=60)
            timings["api_start_s"] = round(time.monotonic() - started, 2)
            _wait_for_deployments(worker, prefect_api, ("returns_exchange/ecomflow",), timeout=120)
            timings["worker_ready_s"] = round(time.monotonic() - started, 2)
            stack = BenchStack(
                db=db,
                prefect_db=prefect_db,
                data_dir=data_dir,
                database_url=database_url,
                prefect_db_url=prefect_db_url,
                prefect_api=prefect_api,
                api_url=f"http://127.0.0.1:{api_port}",
                prefect=prefect,
                api=api,
                worker=worker,
                tokens=tokens,
                env=common_env,
                timings=timings,
                more_workers=list(more_workers),
            )
            yield stack
            failed = False
    finally:
        if stack is not None:
            stack.log_report = log_problems(stack.log_dir)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        log_errors = stack is not None and any(r["errors"] for r in stack.log_report.values())
        if log_errors:
            print(f"[bench] logs have ERROR lines; keeping {data_dir}", file=sys.stderr)
        finish_data_dir(data_dir, keep=keep_data or failed or log_errors)


def run_on_stack(
    drive: Callable[[BenchStack], dict[str, Any]],
    db: str = "sqlite",
    *,
    prefect_db: str = "sqlite",
    **stack_options: Any,
) -> dict[str, Any]:
    """Start an isolated stack, return drive(stack)'s figures with the stack's own (start-up, settings, logs)."""
    load_before = loadavg()
    with isolated_stack(db, prefect_db=prefect_db, **stack_options) as stack:
        figures = drive(stack)
        figures.update(startup=dict(stack.timings), stack_settings=stack.effective_settings())
    figures.update(
        db=db,
        prefect_db=prefect_db,
        load_before=load_before,
        data_dir=str(stack.data_dir),
        **log_figures(stack.log_report),
    )
    return figures
