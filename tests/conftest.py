"""Test setup: a real database (a SQLite file, or PostgreSQL when ECOMFLOW_TEST_DATABASE=postgresql)
built by the alembic migrations, and emptied between tests."""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DATA_DIR = Path(tempfile.mkdtemp(prefix="ecomflow-test-"))
BACKEND = os.environ.get("ECOMFLOW_TEST_DATABASE", "sqlite")
PG_ADMIN_URL = os.environ.get("ECOMFLOW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = f"ecomflow_test_{uuid.uuid4().hex[:10]}"


def _database_url() -> str:
    if BACKEND == "sqlite":
        return f"sqlite:///{DATA_DIR / 'ecomflow.db'}"
    if BACKEND == "postgresql":
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    raise RuntimeError(f"ECOMFLOW_TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}")


# Settings are read once per process: fix them before any ecomflow module reads them.
os.environ["ECOMFLOW_DATA_DIR"] = str(DATA_DIR)
os.environ["ECOMFLOW_DATABASE_URL"] = _database_url()
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["PREFECT_HOME"] = str(DATA_DIR / "prefect-home")
# Fresh Prefect servers of the e2e stack and the tiny benchmarks start from one migrated database
# (bench/harness/prefect_home.py).
os.environ.setdefault("ECOMFLOW_PREFECT_DB_TEMPLATE", str(DATA_DIR / "prefect-template" / "prefect.db"))
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")
# Unit tests have no Prefect server: point at a closed port so attempts fail fast.
os.environ.setdefault("PREFECT_API_URL", "http://127.0.0.1:9/api")


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL lane, leave out the tests marked db_independent: the SQLite lane runs them."""
    if BACKEND != "postgresql":
        return
    kept = [item for item in items if item.get_closest_marker("db_independent") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


# The listener watching a db_independent test, and the checkouts it saw.
_CHECKOUT_GUARD = pytest.StashKey[tuple[Callable[..., None], list[str]]]()
# Set while the session's database is made, in the setup of whichever test runs first: not that test's own use.
_MAKING_DATABASE = threading.Event()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Watch a db_independent test for database checkouts from its setup (module fixtures too) to its teardown."""
    if item.get_closest_marker("db_independent") is None:
        return
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    checkouts: list[str] = []

    def note(*_: object) -> None:
        if not _MAKING_DATABASE.is_set():
            checkouts.append(item.nodeid)

    event.listen(Pool, "checkout", note)
    item.stash[_CHECKOUT_GUARD] = (note, checkouts)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail a db_independent test that checked out a database connection, so the marker cannot hide one."""
    outcome = yield
    if call.when != "teardown" or _CHECKOUT_GUARD not in item.stash:
        return
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    note, checkouts = item.stash[_CHECKOUT_GUARD]
    event.remove(Pool, "checkout", note)
    report = outcome.get_result()
    if checkouts and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} is marked db_independent but checked out a database connection "
            f"{len(checkouts)} time(s): remove the marker, so that the PostgreSQL lane runs it"
        )


@pytest.fixture(scope="session", autouse=True)
def database_url() -> str:
    """Create the test database and migrate it to head once per session."""
    from ecomflow.engine.db.migrate import upgrade_to_head

    url = _database_url()
    if BACKEND == "postgresql":
        _admin_execute(f'CREATE DATABASE "{PG_DATABASE}"')
    _MAKING_DATABASE.set()
    try:
        upgrade_to_head(url)
    finally:
        _MAKING_DATABASE.clear()
    yield url
    leftovers = _our_children_still_running()
    for pid in leftovers:
        os.kill(pid, 9)
    assert not leftovers, f"a test left these processes running on the test database: {leftovers}"
    from ecomflow.engine.db.sessions import get_engine

    get_engine().dispose()
    if BACKEND == "postgresql":
        _admin_execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def _our_children_still_running() -> dict[int, str]:
    """Return the API, worker and Prefect processes this session started that still run (Linux /proc)."""
    children = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and ("ecomflow.cli" in cmdline or "ecomflow.prefect_server" in cmdline):
            children[int(status.parent.name)] = cmdline.strip()
    return children


def empty_all_tables() -> None:
    """Delete every row, keeping the schema and the rows the migrations made (the online warehouse, 0014)."""
    from sqlalchemy import text

    from ecomflow.engine.db.models import Base, Location
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE

    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with session_scope() as session:
        if BACKEND == "postgresql":
            _truncate_what_was_used(session, names)
        else:
            for name in names:
                session.execute(text(f"DELETE FROM {name}"))
        session.add(Location(code=ONLINE_WAREHOUSE, name="线上仓", kind="warehouse"))


def _truncate_what_was_used(session, names: list[str]) -> None:
    """TRUNCATE the tables holding rows and restart the sequences used: as TRUNCATE … RESTART IDENTITY of all.

    Truncating all 40-odd tables gives each (and its indexes) new files: 0.15-0.37 s before every test of the
    PostgreSQL lane, where a test touches a few tables.
    """
    from sqlalchemy import text

    probes = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names)
    holding = list(session.scalars(text(probes)))
    if holding:
        session.execute(text(f"TRUNCATE {', '.join(holding)} CASCADE"))
    # Every sequence here is a table's id (the migrations make no other); last_value is null for one not drawn
    # from since it was made or restarted.
    used = session.scalars(
        text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL")
    ).all()
    for sequence in used:
        session.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Give the test an empty database."""
    empty_all_tables()
    return database_url
