"""Alembic environment: the URL comes from the same settings the app reads."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import Base
from ecomflow.engine.db.sessions import make_engine

target_metadata = Base.metadata


def _url() -> str:
    return context.config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is not None:
        _run_migrations(connectable)
        return
    engine = make_engine(_url())
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Batch migrations copy a table, drop it and rename the copy: enforced foreign keys refuse the drop
            # (or cascade deletes into the rows that refer to it). Off for this connection, before its transaction;
            # _run_migrations checks the keys before committing.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        _run_migrations(connection)
    engine.dispose()


def _run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            _check_foreign_keys(connection)


def _check_foreign_keys(connection: Connection) -> None:
    """Refuse to commit a migration that left rows referring to nothing (SQLite checked nothing while keys were off)."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left {len(broken)} row(s) with broken foreign keys, e.g. {broken[:3]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
