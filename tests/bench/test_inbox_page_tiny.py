"""`bench.inbox_latency --only-page` at a tiny size: one page timed three ways, on a database kept and reused.

No timed assertions: the figures' values depend on the machine; their presence does not.
"""

from __future__ import annotations

import shutil

import pytest

from bench import inbox_latency
from bench.harness.databases import drop_pg_database, pg_admin_url
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

REQUESTS = 8
ARGV = ["--db", BACKEND, "--open", "300", "--closed", "100", "--requests", str(REQUESTS), "--depth", "1"]
SERIES = {"GET /tasks", "list_inbox (read_scope, as the route)", "GET /me"}


def _page_of(argv: list[str]) -> dict:
    return run_main_unrecorded(inbox_latency, [*ARGV, "--only-page", "at_risk", *argv])


def test_times_the_page_over_http_beside_list_inbox_on_a_kept_then_reused_database() -> None:
    # --keep keeps the data dir, where a SQLite database lives; --keep-db keeps a PostgreSQL one.
    seeded = _page_of(["--keep-db", "--keep"])
    try:
        reused = _page_of(["--reuse-db", seeded["url"]])
    finally:
        shutil.rmtree(seeded["data_dir"], ignore_errors=True)
        if BACKEND == "postgresql":
            drop_pg_database(pg_admin_url(), seeded["url"].rsplit("/", 1)[1])
    for figures in (seeded, reused):
        assert figures["page"] == "manager · sort=at_risk · page 2 (cursor)"
        assert set(figures["series"]) == SERIES
        assert all(summary["n"] == REQUESTS for summary in figures["series"].values())
        assert figures["first_errors"] == {}
        assert set(figures["api_cpu_ms"]) == {"GET /tasks", "GET /me"}
        assert all(cpu_ms >= 0 for cpu_ms in figures["api_cpu_ms"].values())  # 10 ms ticks: a tiny run may read 0
    assert reused["reused"] == seeded["url"] and seeded["reused"] is None


@pytest.mark.parametrize("argv", [["--only-page", "at_risk", "--record"], ["--keep-db"], ["--reuse-db", "sqlite:///x"]])
def test_refuses_flags_that_do_not_go_together(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        inbox_latency.main([*ARGV, *argv])
