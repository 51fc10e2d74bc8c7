"""An isolated ecomflow stack for one benchmark run, and the measuring helpers the benchmarks share.

`isolated_stack()` makes a fresh temp data dir, a fresh database (a SQLite file, or a new
PostgreSQL database `ecomflow_bench_<random>` that is dropped afterwards), migrates it with
alembic, creates the users, and starts a real Prefect server (SQLite in its own PREFECT_HOME),
the API and the flow worker as separate process groups on free loopback ports. Everything is
stopped in a `finally`, and every wait is bounded.
"""
from __future__ import annotations

import argparse

import datetime as _dt
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.prefect_home import seed_prefect_home
from ecomflow.services import Service

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
PG_ADMIN_URL = os.environ.get("ECOMFLOW_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB_CHOICES = ("sqlite", "postgresql")
# Environment variables of ours that must not leak from the caller into the stack's processes.
_OWN_PREFIXES = ("ECOMFLOW_", "PREFECT_")


def free_port() -> int:
    """Return a TCP port on loopback that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IsolatedService(Service):
    """A Service whose environment is ours only: no ECOMFLOW_*/PREFECT_* leaks from the caller."""

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k != "DO_NOT_TRACK"}
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.argv, env={**base, **self.env}, stdout=output, stderr=subprocess.STDOUT if output else None,
            start_new_session=True, cwd=str(REPO_ROOT),
        )
        if output:
            output.close()


# --------------------------------------------------------------------------- memory of process trees


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command may contain spaces and parentheses: fields after the last ')' are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """Return the pid and all its descendants that are alive now."""
    children = _children_map()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if os.path.exists(f"/proc/{current}"):
            found.append(current)
        todo.extend(children.get(current, []))
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> dict[str, Any]:
    """Sum VmRSS (and PSS, which does not double-count shared pages) over a process and its descendants."""
    pids = process_tree(pid)
    return {
        "pids": len(pids),
        "rss_mb": round(sum(_status_kb(p, "VmRSS") for p in pids) / 1024, 1),
        "pss_mb": round(sum(_pss_kb(p) for p in pids) / 1024, 1),
        "threads": sum(_status_kb(p, "Threads") for p in pids),
    }


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by a process and its live descendants (and their reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after ')' : state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return round(total / tick, 2)


# --------------------------------------------------------------------------- the machine


def loadavg() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every figure here."""
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "unknown"


def code_version() -> str:
    """The commit the stack ran, and whether src/ or flows.yaml had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "flows.yaml", "migrations"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}" + (f" + {len(dirty)} uncommitted file(s) in src/flows.yaml/migrations" if dirty else " (clean)")


def machine_info() -> dict[str, str]:
    """Return nproc, CPU model, RAM and the versions a result depends on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        free = subprocess.run(["free", "-m"], capture_output=True, text=True, timeout=5).stdout
        ram = f"{free.splitlines()[1].split()[1]} MB total (free -m)"
    except (OSError, IndexError, subprocess.SubprocessError):
        ram = "unknown"
    import prefect

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "prefect": prefect.__version__,
    }


# --------------------------------------------------------------------------- HTTP helpers


class Staff:
    """One person using the API over HTTP (the same calls as tests/e2e Staff)."""

    def __init__(self, base_url: str, name: str, token: str) -> None:
        self.name = name
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def start_return(self, params: dict[str, Any], business_key: str) -> dict[str, Any]:
        response = self.http.post("/processes/returns_exchange/instances", json={"business_key": business_key, "params": params})
        if response.status_code != 201:
            raise RuntimeError(f"start returned {response.status_code}: {response.text}")
        return response.json()

    def open_tasks(self, **params: Any) -> list[dict[str, Any]]:
        """One inbox page of open tasks, newest first."""
        response = self.http.get("/tasks", params={"state": "open", "limit": 200, "sort": "-created", **params})
        if response.status_code != 200:
            raise RuntimeError(f"inbox returned {response.status_code}: {response.text}")
        return response.json()["items"]

    def all_open_tasks(self, **params: Any) -> list[dict[str, Any]]:
        """Every open task the caller sees, following the keyset cursor."""
        items, cursor = [], None
        while True:
            query = {"state": "open", "limit": 200, "sort": "created", **params}
            if cursor:
                query["cursor"] = cursor
            response = self.http.get("/tasks", params=query)
            if response.status_code != 200:
                raise RuntimeError(f"inbox returned {response.status_code}: {response.text}")
            page = response.json()
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def claim(self, task_id: str) -> None:
        response = self.http.post(f"/tasks/{task_id}/claim")
        if response.status_code != 200:
            raise RuntimeError(f"claim returned {response.status_code}: {response.text}")

    def complete(self, task_id: str, data: dict[str, Any]) -> None:
        response = self.http.post(f"/tasks/{task_id}/complete", json={"data": data})
        if response.status_code != 200:
            raise RuntimeError(f"complete returned {response.status_code}: {response.text}")

    def instance(self, instance_id: str) -> dict[str, Any]:
        response = self.http.get(f"/instances/{instance_id}")
        if response.status_code != 200:
            raise RuntimeError(f"instance returned {response.status_code}: {response.text}")
        return response.json()

    def close(self) -> None:
        self.http.close()



def wait_until(probe: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Call probe until it returns something truthy; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the stack


class StackSystem:
    """What a load benchmark reads off the stack a system under test runs on (ours or bare Prefect's)."""

    stack: Any  # BenchStack or bench.bare_prefect.BareStack: both have services(), log_dir and check_alive()

    def services(self) -> dict[str, int]:
        return {name: service.process.pid for name, service in self.stack.services().items()}

    def prefect_log(self) -> Path:
        return self.stack.log_dir / "prefect-server.log"

    def check_alive(self) -> None:
        self.stack.check_alive()


@dataclass
class BenchStack:
    """A running isolated stack."""

    db: str
    prefect_db: str
    prefect_pg_database: str | None
    data_dir: Path
    database_url: str
    pg_database: str | None
    prefect_api: str
    api_url: str
    prefect: Service
    api: Service
    worker: Service
    tokens: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # Filled in after the processes have stopped (so shutdown lines are included).
    log_report: dict[str, Any] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def effective_settings(self) -> dict[str, str]:
        """The worker/dispatcher/sweeper settings the stack runs with (defaults unless overridden)."""
        from ecomflow.engine.config import Settings

        keys = ("worker_concurrency", "worker_poll_seconds", "dispatcher_poll_seconds", "sweeper_poll_seconds")
        return {key: self.env.get(f"ECOMFLOW_{key.upper()}", str(Settings.model_fields[key].default)) for key in keys}

    def staff(self, name: str) -> Staff:
        return Staff(self.api_url, name, self.tokens[name])

    def db_size_bytes(self) -> int:
        """Size of our database: the SQLite file with its WAL, or pg_database_size."""
        return database_size_bytes(self.database_url)

    def sqlite_main_file_bytes(self) -> int | None:
        if self.db != "sqlite":
            return None
        path = Path(self.database_url.split("///", 1)[1])
        return path.stat().st_size if path.exists() else 0

    def prefect_db_size_bytes(self) -> int:
        """Size of the Prefect server's database: SQLite with its WAL, or pg_database_size."""
        if self.prefect_pg_database:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                return int(conn.execute("SELECT pg_database_size(%s)", (self.prefect_pg_database,)).fetchone()[0])
        home = Path(self.env["PREFECT_HOME"])
        return sum(p.stat().st_size for p in home.glob("prefect.db*") if p.is_file())

    def memory(self) -> dict[str, dict[str, Any]]:
        """Memory of each process group now."""
        return {name: tree_memory(service.process.pid) for name, service in self.services().items()}

    def services(self) -> dict[str, Service]:
        return {"worker": self.worker, "prefect": self.prefect, "api": self.api}

    def check_alive(self) -> None:
        for name, service in self.services().items():
            if not service.running():
                raise RuntimeError(f"{name} exited with code {service.process.returncode}; see {service.log_path}")

    def prefect_count(self, state_types: list[str], *, flow_name: str | None = None) -> int:
        """Count flow runs in the given Prefect state types."""
        body: dict[str, Any] = {"flow_runs": {"state": {"type": {"any_": state_types}}}}
        if flow_name:
            body["flows"] = {"name": {"any_": [flow_name]}}
        response = httpx.post(f"{self.prefect_api}/flow_runs/count", json=body, timeout=30)
        response.raise_for_status()
        return int(response.json())

    def log_problems(self, limit: int = 20) -> dict[str, Any]:
        """Count ERROR/CRITICAL/Traceback lines (and WARNING lines) in each log; keep the first few."""
        return log_problems(self.log_dir, limit)


def database_size_bytes(database_url: str) -> int:
    """Size of a database: the SQLite file with its WAL, or pg_database_size."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def log_problems(log_dir: Path, limit: int = 20) -> dict[str, Any]:
    """Count ERROR/CRITICAL/Traceback lines (and WARNING lines) in each log of a directory; keep the first few."""
    report: dict[str, Any] = {}
    for path in sorted(log_dir.glob("*.log")):
        errors, warnings, samples, first_error = 0, 0, [], None
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines):
            if re.search(r"\b(ERROR|CRITICAL)\b", line):
                errors += 1
                if first_error is None:
                    first_error = number
                if len(samples) < limit:
                    samples.append(line[:300])
            elif re.search(r"\bWARNING\b", line):
                warnings += 1
                if len(samples) < limit:
                    samples.append(line[:300])
        context = [line[:300] for line in lines[first_error:first_error + 60]] if first_error is not None else []
        report[path.name] = {"errors": errors, "warnings": warnings, "samples": samples, "first_error_context": context}
    return report


def _create_pg_database(prefix: str = "ecomflow_bench") -> tuple[str, str]:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_for_deployments(worker: Service, prefect_api: str, names: tuple[str, ...], timeout: float) -> None:
    """Wait until the worker has registered its deployments (its loop starts right after).

    (The worker's own "worker ready" INFO line cannot be relied on: Prefect installs a WARNING
    root handler on import, so the worker's logging.basicConfig(level=INFO) is a no-op.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.running():
            raise RuntimeError(f"{worker.name} exited with code {worker.process.returncode}; see {worker.log_path}")
        try:
            if all(httpx.get(f"{prefect_api}/deployments/name/{name}", timeout=5).status_code == 200 for name in names):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise TimeoutError(f"the worker did not register {names} within {timeout:.0f}s; see {worker.log_path}")
    # The worker registers every implemented flow in turn: wait until the count stops growing.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(httpx.post(f"{prefect_api}/deployments/count", json={}, timeout=5).json())
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since >= 2:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not register {names} within {timeout:.0f}s; see {worker.log_path}")


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
) -> Iterator[BenchStack]:
    """Start a fresh stack, yield it, and stop and remove everything afterwards.

    users maps a user name to its roles; their tokens are in stack.tokens. env adds or
    overrides ECOMFLOW_* settings of the API and worker (e.g. poll intervals). prefect_db
    "postgresql" puts the Prefect server's own database in a fresh PostgreSQL database too
    (`ecomflow_bench_prefect_<random>`, dropped afterwards) instead of SQLite in PREFECT_HOME.
    prefect_server_env adds settings of the Prefect server process only (e.g. PREFECT_ACCESS_LOG_ENV).
    """
    if db not in DB_CHOICES or prefect_db not in DB_CHOICES:
        raise ValueError(f"db and prefect_db must be one of {DB_CHOICES}, not {db!r}/{prefect_db!r}")
    data_dir = Path(tempfile.mkdtemp(prefix=f"ecomflow-bench-{db}-"))
    (data_dir / "logs").mkdir()
    pg_database = None
    prefect_pg_database = None
    saved_env = {key: os.environ.get(key) for key in ("ECOMFLOW_DATABASE_URL", "ECOMFLOW_DATA_DIR")}
    services: list[Service] = []
    stack: BenchStack | None = None
    engine_url = None
    failed = True
    try:
        if db == "postgresql":
            pg_database, database_url = _create_pg_database()
        else:
            database_url = f"sqlite:///{data_dir / 'ecomflow.db'}"
        prefect_env: dict[str, str] = {}
        if prefect_db == "postgresql":
            prefect_pg_database, prefect_pg_url = _create_pg_database("ecomflow_bench_prefect")
            prefect_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = prefect_pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        # Settings are read once per process: fix them before any engine module reads them.
        # (Everything below also passes the URL explicitly, so an already-configured caller works too.)
        os.environ["ECOMFLOW_DATABASE_URL"] = database_url
        os.environ["ECOMFLOW_DATA_DIR"] = str(data_dir)
        from ecomflow.engine.db.sessions import session_scope
        from ecomflow.engine.db.migrate import upgrade_to_head
        from ecomflow.engine.definitions.current import get_definitions
        from ecomflow.engine.people.users import add_user

        timings: dict[str, float] = {}
        started = time.monotonic()
        upgrade_to_head(database_url)
        timings["migrate_s"] = round(time.monotonic() - started, 2)
        engine_url = database_url
        tokens = {}
        for name, roles in users.items():
            with session_scope(database_url) as session:
                _, tokens[name] = add_user(session, name=name, roles=roles, known_roles=get_definitions().roles)

        prefect_port, api_port = free_port(), free_port()
        prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        common_env = {
            "PREFECT_API_URL": prefect_api,
            "PREFECT_HOME": str(data_dir / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "ECOMFLOW_DATABASE_URL": database_url,
            "ECOMFLOW_DATA_DIR": str(data_dir),
            "ECOMFLOW_API_HOST": "127.0.0.1",
            "ECOMFLOW_API_PORT": str(api_port),
            "ECOMFLOW_PREFECT_PORT": str(prefect_port),
            **prefect_env,
            **(env or {}),
        }
        log_dir = data_dir / "logs"
        prefect = IsolatedService(
            name="prefect-server",
            argv=[sys.executable, "-m", "ecomflow.prefect_server", "--host", "127.0.0.1", "--port", str(prefect_port)],
            env={**common_env, **(prefect_server_env or {})}, health_url=f"{prefect_api}/health",
            log_path=log_dir / "prefect-server.log",
        )
        api = IsolatedService(
            name="api", argv=[sys.executable, "-m", "ecomflow.cli", "api"], env=common_env,
            health_url=f"http://127.0.0.1:{api_port}/health", log_path=log_dir / "api.log",
        )
        worker = IsolatedService(
            name="worker", argv=[sys.executable, "-m", "ecomflow.cli", "worker"], env=common_env,
            log_path=log_dir / "worker.log",
        )
        seed_prefect_home(data_dir / "prefect-home", prefect.env)
        started = time.monotonic()
        services.append(prefect)
        prefect.start()
        prefect.wait_healthy(timeout=startup_timeout)
        timings["prefect_start_s"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        services.extend([api, worker])
        api.start()
        worker.start()
        api.wait_healthy(timeout=60)
        timings["api_start_s"] = round(time.monotonic() - started, 2)
        _wait_for_deployments(worker, prefect_api, ("returns_exchange/ecomflow",), timeout=120)
        timings["worker_ready_s"] = round(time.monotonic() - started, 2)
        stack = BenchStack(
            db=db, prefect_db=prefect_db, prefect_pg_database=prefect_pg_database, data_dir=data_dir, database_url=database_url, pg_database=pg_database, prefect_api=prefect_api,
            api_url=f"http://127.0.0.1:{api_port}", prefect=prefect, api=api, worker=worker, tokens=tokens,
            env=common_env, timings=timings,
        )
        yield stack
        failed = False
    finally:
        for service in reversed(services):  # worker, api, then prefect
            try:
                service.stop(timeout=20)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"[bench] stopping {service.name} failed: {exc}", file=sys.stderr)
        if stack is not None:
            stack.log_report = stack.log_problems()
        if engine_url is not None:
            from ecomflow.engine.db.sessions import get_engine

            get_engine(engine_url).dispose()
        for name in (pg_database, prefect_pg_database):
            if name is None:
                continue
            try:
                _drop_pg_database(name)
            except Exception as exc:  # noqa: BLE001
                print(f"[bench] dropping database {name} failed: {exc}", file=sys.stderr)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        log_errors = stack is not None and any(r["errors"] for r in stack.log_report.values())
        if log_errors:
            print(f"[bench] logs have ERROR lines; keeping {data_dir}", file=sys.stderr)
        if keep_data or failed or log_errors:
            print(f"[bench] data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


# --------------------------------------------------------------------------- figures and RESULTS.md


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def summarize(values: list[float]) -> dict[str, float]:
    """n, p50, p95, max, min and mean of durations in seconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 3),
        "p95_s": round(percentile(values, 95), 3),
        "max_s": round(max(values), 3),
        "min_s": round(min(values), 3),
        "mean_s": round(sum(values) / len(values), 3),
    }


def command_line() -> str:
    """The command that is running, as one would type it from the repo root."""
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    module = sys.modules["__main__"].__spec__.name if getattr(sys.modules["__main__"], "__spec__", None) else sys.argv[0]
    return f"cd {REPO_ROOT} && {sys.executable} -m {module} {args}".rstrip()


_PREFECT_DB_TEXT = {"sqlite": "SQLite in its own PREFECT_HOME", None: "none (this benchmark runs no Prefect server)"}


def append_results(title: str, *, db: str, rows: list[tuple[str, str]], notes: list[str] | None = None,
                   load_before: str | None = None, prefect_db: str | None = "sqlite", path: Path = RESULTS_PATH) -> None:
    """Append a dated section with the command, the machine and a table of figures to RESULTS.md.

    prefect_db None: the benchmark ran no Prefect server.
    """
    machine = machine_info()
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"## {title} — {db} — {now}",
        "",
        f"- command: `{command_line()}`",
        f"- code: {code_version()}",
        f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), RAM {machine['ram']}, Python {machine['python']}",
        f"- load average (1/5/15 min) before → after the run: {load_before or '?'} → {loadavg()}",
        f"- database (ecomflow): {db}; Prefect server's database: "
        f"{_PREFECT_DB_TEXT.get(prefect_db, 'its own PostgreSQL database')}; prefect {machine['prefect']}",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
    ]
    if notes:
        lines += [*(f"- {note}" for note in notes), ""]
    if not path.exists():
        path.write_text("# Benchmark results\n\nEach section is appended by a run of a `bench/` script.\n\n")
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def add_common_options(parser: "argparse.ArgumentParser") -> None:
    """Add the options every benchmark takes."""
    parser.add_argument("--db", choices=DB_CHOICES, default="sqlite", help="ecomflow's database")
    parser.add_argument("--prefect-db", choices=DB_CHOICES, default="sqlite", help="the Prefect server's database")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra ECOMFLOW_* setting for API and worker")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, SQLite files)")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")


def print_report(rows: list[tuple[str, str]], figures: dict) -> None:
    """Print a benchmark's figures and the first problem lines of each log."""
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for name, samples in figures["log_samples"].items():
        print(f"--- {name} (first problem lines)")
        for line in samples:
            print("   ", line)
    for name, context in figures["first_errors"].items():
        print(f"--- {name}: first ERROR with context (data dir {figures['data_dir']})")
        for line in context:
            if line and not line[0].isspace():  # the log line and the exception lines, not the frames
                print("   ", line[:200])


def report_notes(figures: dict, env: dict[str, str]) -> list[str]:
    """Return the notes under a RESULTS.md table: settings and the first error of each log."""
    notes = ["settings: " + ", ".join(f"{k}={v}" for k, v in figures["settings"].items()) + f" (env overrides: {env or 'none'})"]
    for name, context in figures["first_errors"].items():
        detail = next((line.strip() for line in context[1:] if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)), "")
        notes.append(f"first ERROR in {name}: `{context[0].strip()}` … `{detail}`")
    return notes


def closing_rows(figures: dict) -> list[tuple[str, str]]:
    """Return the rows every benchmark table ends with: stack start-up and log problems."""
    return [
        ("stack start: prefect healthy / api healthy / worker ready", " / ".join(
            f"{figures['startup'][k]} s" for k in ("prefect_start_s", "api_start_s", "worker_ready_s"))),
        ("log lines ERROR / WARNING", ", ".join(f"{n}: {r['errors']}/{r['warnings']}" for n, r in figures["logs"].items())),
    ]


# --------------------------------------------------------------------------- where the CPU goes

# Prefect's uvicorn access log ('"POST /api/flow_runs/filter HTTP/1.1" 200') gives the Prefect API calls a
# benchmark caused, by endpoint. Give these settings to the server process only (other processes would log
# their own uvicorn access lines too); the plain `debug` handler keeps rich's formatting cost out of the figures.
PREFECT_ACCESS_LOG_ENV = {"PREFECT_SERVER_LOGGING_LEVEL": "INFO", "PREFECT_LOGGING_LOGGERS_UVICORN_HANDLERS": "debug"}
_ACCESS_LINE = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) (/api/[^ ?"]*)')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def prefect_calls(log: Path, start: int, end: int) -> dict[str, int]:
    """Count the Prefect API requests in a server's access log between two byte offsets, by endpoint."""
    if not log.exists() or end <= start:
        return {}
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read(end - start).decode(errors="replace")
    counts: dict[str, int] = {}
    for match in _ACCESS_LINE.finditer(text):
        key = f"{match.group(1)} {_UUID.sub('{id}', match.group(2))}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def py_spy() -> str | None:
    """Return the py-spy sampling profiler (the venv's or on PATH), or None when it is not installed."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_profiles(pids: Mapping[str, int], *, seconds: float, rate: int, out_dir: Path) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Sample each process and its children with py-spy for `seconds` (non-blocking, raw folded stacks); {} without py-spy."""
    executable = py_spy()
    if executable is None:
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    started = {}
    for name, pid in pids.items():
        path = out_dir / f"{name}.folded"
        argv = [executable, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
                "--nonblocking", "--subprocesses", "--full-filenames", "--format", "raw", "--output", str(path)]
        started[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
    return started


def finish_profiles(started: Mapping[str, tuple[subprocess.Popen, Path]], *, top: int = 8) -> dict[str, dict[str, Any]]:
    """Wait for the profilers and summarise each profile (see summarise_profile)."""
    summaries: dict[str, dict[str, Any]] = {}
    for name, (process, path) in started.items():
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if not path.exists():
            summaries[name] = {"samples": 0, "error": err.decode(errors="replace").strip()[-300:]}
            continue
        summaries[name] = {**summarise_profile(path.read_text(errors="replace"), top=top), "file": str(path)}
    return summaries


# Leaf frames of a thread that waits (in select, a lock, a queue or a socket read): py-spy's non-blocking
# mode, and threads that are runnable but not running on a loaded machine, still report them.
_WAITING_LEAF = re.compile(
    r"^(\S*select|Condition\.wait|Event\.wait|Thread\.join|\S*sleep|Queue\.get|SyncStream\.read|_worker|WorkerThread\.run|"
    r"_connection_worker_thread|Connection\.wait|\S*accept|\S*recv\S*) "
)


def _frame_label(frame: str) -> tuple[str, str]:
    """Split py-spy's 'func (path/to/module.py:12)' into ('func (to/module.py)', owning package or stdlib module)."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame, "other"
    func, path = match.groups()
    package = re.search(r"site-packages/([^/]+)", path)
    if package:
        owner = package.group(1)
    elif "/src/" in path or "/bench/" in path:
        owner = "ecomflow"
    else:
        owner = "stdlib " + Path(path).stem.strip("<>").replace("frozen ", "")
    return f"{func} ({'/'.join(path.split('/')[-2:])})", owner


def summarise_profile(text: str, *, top: int = 8) -> dict[str, Any]:
    """Summarise py-spy raw output: samples, working samples (not waiting), and of these the self time by package
    and by function and the inclusive time of ecomflow's and Prefect's functions, in %."""
    by_package: dict[str, int] = {}
    by_function: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = working = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames or not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf, package = _frame_label(frames[-1])
        if _WAITING_LEAF.match(leaf):
            continue
        working += n
        by_function[leaf] = by_function.get(leaf, 0) + n
        by_package[package] = by_package.get(package, 0) + n
        # Inclusive time of our code and Prefect's (not of the event loop, threads or CLI around them).
        for label, owner in {_frame_label(f) for f in frames}:
            if owner in ("ecomflow", "prefect") and "(cli/" not in label and "__main__" not in label:
                inclusive[label] = inclusive.get(label, 0) + n
    if not working:
        return {"samples": total, "working_samples": 0}

    def shares(counts: dict[str, int], limit: int, below: float = 1.01) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        return [(label, round(100 * n / working, 1)) for label, n in ranked if n / working < below][:limit]

    return {
        "samples": total,
        "working_samples": working,
        "self_by_package": shares(by_package, top),
        "self_by_function": shares(by_function, top),
        # Frames in nearly every working sample (thread bootstrap, a serve loop) say nothing.
        "inclusive": shares(inclusive, top + 4, below=0.9),
    }
