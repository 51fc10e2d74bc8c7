"""A new Prefect home gets a copy of the migrated template, and only where Prefect's database is that SQLite file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from bench.harness.prefect_home import TEMPLATE_ENV, seed_prefect_home

# Prefect's SQLite template, the same file in both lanes (env {}): the lane's databases are never read.
pytestmark = pytest.mark.db_independent


def _alembic_version(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_new_home_gets_the_migrated_template(tmp_path: Path) -> None:
    seed_prefect_home(tmp_path / "home", {})
    copied = tmp_path / "home" / "prefect.db"
    assert _alembic_version(copied) == _alembic_version(Path(os.environ[TEMPLATE_ENV]))


def test_a_home_with_a_database_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "prefect.db").write_bytes(b"kept")
    seed_prefect_home(tmp_path / "home", {})
    assert (tmp_path / "home" / "prefect.db").read_bytes() == b"kept"


def test_prefect_on_another_database_gets_nothing(tmp_path: Path) -> None:
    seed_prefect_home(
        tmp_path / "home", {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://elsewhere/db"}
    )
    assert not (tmp_path / "home").exists()
