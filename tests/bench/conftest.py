"""The benchmarks in the suite make their PostgreSQL databases on the test cluster (ECOMFLOW_TEST_PG_ADMIN_URL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.harness.databases import PG_ADMIN_URL_ENV
from tests.conftest import PG_ADMIN_URL


@pytest.fixture(scope="session", autouse=True)
def bench_pg_admin_url() -> Iterator[str]:
    """Point the harness's PostgreSQL admin URL at the test cluster for the whole session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PG_ADMIN_URL_ENV, PG_ADMIN_URL)
        yield PG_ADMIN_URL
