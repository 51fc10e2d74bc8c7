"""The embedded Prefect server's two changes: SQLite writers take the lock at BEGIN; no late-run rewrites."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prefect.server.database import configurations
from prefect.server.database.configurations import SQLITE_BEGIN_MODE, AioSqliteConfiguration

from ecomflow.prefect_server import take_sqlite_write_lock_at_begin

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
def patched() -> Iterator[None]:
    original = AioSqliteConfiguration.begin_transaction
    take_sqlite_write_lock_at_begin()
    yield
    AioSqliteConfiguration.begin_transaction = original


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
