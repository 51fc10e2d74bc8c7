"""The schema comes from the alembic migrations only, and they match the models."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from engine.db import get_engine, make_engine
from engine.migrate import alembic_config, upgrade_to_head
from engine.models import Base
from tests.conftest import BACKEND, PG_ADMIN_URL, _admin_execute


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """Return the URL of a brand-new, empty database on the backend of this run."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"ecomflow_fresh_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class TestUpgradeToHead:
    def test_empty_database_gets_every_table(self, empty_database_url: str) -> None:
        engine = make_engine(empty_database_url)
        try:
            assert inspect(engine).get_table_names() == []
            upgrade_to_head(empty_database_url)
            tables = set(inspect(engine).get_table_names())
            assert tables == set(Base.metadata.tables) | {"alembic_version"}
            head = ScriptDirectory.from_config(alembic_config(empty_database_url)).get_current_head()
            assert _revision(engine) == head
            assert _differences(engine) == []
        finally:
            engine.dispose()

    def test_upgrading_a_database_at_head_changes_nothing(self, empty_database_url: str) -> None:
        engine = make_engine(empty_database_url)
        try:
            upgrade_to_head(empty_database_url)
            before = {name: inspect(engine).get_columns(name) for name in Base.metadata.tables}
            upgrade_to_head(empty_database_url)
            after = {name: inspect(engine).get_columns(name) for name in Base.metadata.tables}
            assert [str(c) for cols in after.values() for c in cols] == [str(c) for cols in before.values() for c in cols]
        finally:
            engine.dispose()


class TestMigrationsMatchModels:
    def test_autogenerate_finds_no_difference(self, database_url: str) -> None:
        assert _differences(get_engine()) == []
