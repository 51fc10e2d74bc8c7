"""The embedded Prefect server's changes: SQLite writers take the lock at BEGIN, plain datetimes bound, defaults."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from prefect.server.database import configurations
from prefect.server.database.configurations import SQLITE_BEGIN_MODE, AioSqliteConfiguration
from prefect.server.utilities.database import Timestamp
from prefect.settings import Settings
from prefect.types._datetime import now
from sqlalchemy.dialects import postgresql, sqlite

from ecomflow.prefect_server import (
    SERVER_DEFAULTS,
    apply_server_defaults,
    bind_plain_datetimes,
    take_sqlite_write_lock_at_begin,
)

pytestmark = pytest.mark.db_independent


class _Session:
    """Stands in for the AsyncSession: begin_transaction only enters session.begin()."""

    def begin(self) -> _Session:
        return self

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    # Set to itself, so that monkeypatch puts back Prefect's own after the test.
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    take_sqlite_write_lock_at_begin()


async def _mode_inside(with_for_update: bool) -> str | None:
    config = AioSqliteConfiguration.__new__(AioSqliteConfiguration)
    async with config.begin_transaction(_Session(), with_for_update=with_for_update):
        return SQLITE_BEGIN_MODE.get()


def test_prefect_begins_deferred_transactions_unless_told_otherwise() -> None:
    # What the change is for: if Prefect itself began every transaction IMMEDIATE, it would be needless.
    assert asyncio.run(_mode_inside(with_for_update=False)) == "DEFERRED"
    assert configurations.SQLITE_BEGIN_MODE is SQLITE_BEGIN_MODE


def test_every_transaction_begins_immediate(patched: None) -> None:
    assert asyncio.run(_mode_inside(with_for_update=False)) == "IMMEDIATE"
    assert asyncio.run(_mode_inside(with_for_update=True)) == "IMMEDIATE"


@pytest.fixture
def plain_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Timestamp, "process_bind_param", Timestamp.process_bind_param)
    bind_plain_datetimes()


def test_prefect_timestamps_bind_as_plain_datetimes_of_the_same_instant(plain_binding: None) -> None:
    shanghai_now = now("Asia/Shanghai")
    on_postgresql = Timestamp().process_bind_param(shanghai_now, postgresql.dialect())
    assert type(on_postgresql) is datetime.datetime
    assert on_postgresql == shanghai_now and on_postgresql.utcoffset() == datetime.timedelta(hours=8)
    on_sqlite = Timestamp().process_bind_param(shanghai_now, sqlite.dialect())  # Prefect stores UTC there
    assert type(on_sqlite) is datetime.datetime
    assert on_sqlite == shanghai_now and on_sqlite.utcoffset() == datetime.timedelta(0)


def test_plain_and_missing_timestamps_bind_as_before(plain_binding: None) -> None:
    plain = datetime.datetime(2026, 12, 6, 13, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
    assert Timestamp().process_bind_param(plain, postgresql.dialect()) is plain
    assert Timestamp().process_bind_param(None, postgresql.dialect()) is None
    with pytest.raises(ValueError, match="timezone"):
        Timestamp().process_bind_param(datetime.datetime(2026, 12, 6), postgresql.dialect())


def _prefect_settings_after_server_defaults(monkeypatch: pytest.MonkeyPatch, **own: str) -> Settings:
    """Prefect's settings as the started server reads them: the environment's own values, then the defaults."""
    for name in SERVER_DEFAULTS:
        # Set, then removed: monkeypatch then restores each name's original state, whatever the defaults set.
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)
    for name, value in own.items():
        monkeypatch.setenv(name, value)
    apply_server_defaults()
    return Settings()


def test_the_server_defaults_name_settings_prefect_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # A misspelt name would be ignored without a word: each default must change what Prefect reads.
    settings = _prefect_settings_after_server_defaults(monkeypatch)
    assert settings.server.database.sqlalchemy.pool_size == 15
    assert settings.server.services.late_runs.enabled is False
    assert settings.server.services.pause_expirations.enabled is False


def test_an_operators_setting_wins_over_the_server_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _prefect_settings_after_server_defaults(monkeypatch, PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE="40")
    assert settings.server.database.sqlalchemy.pool_size == 40
