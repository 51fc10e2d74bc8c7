"""Database engines and sessions; SQLite gets WAL, a busy timeout, write-first transactions and snapshot reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.wal_checkpoints import checkpoint_in_background

# Execution option of the engine read_scope's sessions use; SQLite's begin hook reads it.
_READ_ONLY = "ecomflow_read_only"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let us issue BEGIN ourselves so that every transaction takes the write lock first.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        read_only = bool(connection.get_execution_options().get(_READ_ONLY))
        kept = connection.connection.info  # lives as long as the DBAPI connection, across checkouts
        if kept.get("query_only", False) != read_only:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
            kept["query_only"] = read_only
        # Writers: IMMEDIATE avoids SQLITE_BUSY on read-then-write upgrades under concurrency.
        # Readers: a WAL snapshot, which never waits for the write lock that claims and completes hold.
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class _WithoutRowData(logging.Filter):
    """Drop the result rows SQLAlchemy's engine log shows at DEBUG: they hold customers' params and form outputs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


def _keep_data_out_of_the_sql_log() -> None:
    # Statement parameters are hidden by hide_parameters; rows have no such switch, so a filter drops them.
    sql_log = logging.getLogger("sqlalchemy.engine.Engine")
    if not any(isinstance(f, _WithoutRowData) for f in sql_log.filters):
        sql_log.addFilter(_WithoutRowData())


def make_engine(url: str, *, background_checkpoints: bool = False) -> Engine:
    """Create an engine for a database URL with the settings our guarantees need.

    background_checkpoints: on a SQLite file, fold the write-ahead log back on a thread of the engine's
    own instead of in the commits (engine/wal_checkpoints.py); the shared engine of each process does.
    """
    _keep_data_out_of_the_sql_log()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        on_disk = bool(path) and path != ":memory:"
        if on_disk:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)
        _configure_sqlite(engine)
        if on_disk and background_checkpoints:
            checkpoint_in_background(engine, path)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # hide_parameters: neither the SQL log nor an error's message (logged on a 500) shows the values.
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """Return the shared engine for a URL (default: the configured database)."""
    return make_engine(url or get_settings().resolved_database_url, background_checkpoints=True)


@lru_cache(maxsize=4)
def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """Return the session factory bound to the shared engine."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """Run one unit of work: commit on success, roll back on any error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def read_only(engine: Engine) -> Engine:
    """Return the engine on the same pool whose transactions refuse writes.

    On SQLite they also never wait for the write lock.
    """
    options: dict[str, object] = {_READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True  # BEGIN READ ONLY; the pool resets it when the connection comes back
    return engine.execution_options(**options)


@lru_cache(maxsize=4)
def get_read_engine(url: str | None = None) -> Engine:
    """Return the shared engine's read-only twin (same pool)."""
    return read_only(get_engine(url))


@lru_cache(maxsize=4)
def get_read_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """Return the factory of read-only sessions."""
    return sessionmaker(bind=get_read_engine(url), expire_on_commit=False, autoflush=False)


@contextmanager
def read_scope(url: str | None = None) -> Iterator[Session]:
    """Run reads only, in one transaction that is never committed; the database refuses any write in it.

    On SQLite it reads a snapshot and never waits for the write lock (session_scope takes that lock first).
    """
    with get_read_sessionmaker(url)() as session:
        yield session


@contextmanager
def read_connection(url: str | None = None) -> Iterator[Connection]:
    """Like read_scope, for a Core query or two without the ORM session's cost (authentication on every request)."""
    with get_read_engine(url).connect() as connection:
        yield connection


def insert_unless_exists(session: Session, row: object) -> bool:
    """Insert the row in a savepoint; return False (and keep the session usable) if a unique key already holds it."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True
