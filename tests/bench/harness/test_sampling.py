"""The harness's CPU readings of PostgreSQL: the whole cluster, ended backends included."""

from __future__ import annotations

import psycopg
import pytest

from bench.harness.sampling import postgres_cpu_seconds
from tests.conftest import BACKEND, PG_ADMIN_URL

pytestmark = pytest.mark.skipif(BACKEND != "postgresql", reason="reads the local PostgreSQL server's processes")


def test_work_on_connections_since_closed_still_counts() -> None:
    before = postgres_cpu_seconds()
    assert before is not None
    # Each connection is a backend process that ends with it: its CPU is then its postmaster's reaped children's.
    for _ in range(3):
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            connection.execute("SELECT sum(hashtext(n::text)) FROM generate_series(1, 2000000) AS n").fetchone()
    assert postgres_cpu_seconds() - before >= 0.3
