"""Databases of one run: a fresh SQLite file or PostgreSQL database, migrated by alembic, dropped afterwards.

New PostgreSQL databases are made through the admin URL in ECOMFLOW_BENCH_PG_ADMIN_URL (default: the
local cluster's `test` database). It is read at each call, so a test session can point it elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DB_CHOICES = ("sqlite", "postgresql")
PG_ADMIN_URL_ENV = "ECOMFLOW_BENCH_PG_ADMIN_URL"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    """Return the URL of the PostgreSQL database from which new databases are created and dropped."""
    return os.environ.get(PG_ADMIN_URL_ENV, DEFAULT_PG_ADMIN_URL)


@contextmanager
def pg_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """Create an empty PostgreSQL database `<prefix>_<random>`, yield its URL, and drop it afterwards (unless keep)."""
    import psycopg

    admin = pg_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        if keep:
            print(f'[bench] database kept: {url} (drop it with DROP DATABASE "{name}")', file=sys.stderr)
        else:
            drop_pg_database(admin, name)


def drop_pg_database(admin: str, name: str) -> None:
    """Drop a database of the cluster (closing its connections); say so on stderr if that fails."""
    import psycopg

    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:
        print(f"[bench] dropping database {name} failed: {exc}", file=sys.stderr)


@contextmanager
def fresh_database(db: str, data_dir: Path, *, keep: bool = False) -> Iterator[str]:
    """Yield the URL of a new empty database of ours (a SQLite file in data_dir, or a PostgreSQL database).

    Afterwards its shared engine is disposed and a PostgreSQL database dropped, unless keep (a SQLite
    file stays as long as its data dir).
    """
    if db not in DB_CHOICES:
        raise ValueError(f"db must be one of {DB_CHOICES}, not {db!r}")
    if db == "sqlite":
        url = f"sqlite:///{data_dir / 'ecomflow.db'}"
        try:
            yield url
        finally:
            _dispose(url)
        return
    with pg_database("ecomflow_bench", keep=keep) as url:
        try:
            yield url
        finally:
            _dispose(url)


def migrate(url: str) -> float:
    """Do what `ecomflow migrate` does (alembic to head, then store the definition versions); return seconds."""
    from ecomflow.engine.db.migrate import upgrade_to_head
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.definitions.versions import store_versions

    started = time.monotonic()
    upgrade_to_head(url)
    # Seeded instances are pinned to these versions: without them every step of theirs is unknown.
    with session_scope(url) as session:
        store_versions(session, get_definitions())
    return time.monotonic() - started


def _dispose(url: str) -> None:
    from ecomflow.engine.db.sessions import get_engine

    get_engine(url).dispose()


def sqlite_path(url: str) -> Path:
    """Return the file of a sqlite:/// URL."""
    return Path(url.split("///", 1)[1])


def database_size_bytes(url: str) -> int:
    """Return a database's size: a SQLite file with its WAL and shared memory, or pg_database_size."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
