"""Chaos at a small size: staff work returns and orders while the worker, the API and Prefect are killed.

bench/chaos.py's own stack (fresh database, own ports), not the package's shared one. The kills
follow a fixed plan so that each part is hit at least once and Prefect's restart fits the run.
PostgreSQL itself is not restarted here: the cluster is shared with the other tests of this
session (and whatever else runs on the machine); ECOMFLOW_CHAOS_PG_RESTART=1 turns it on.
"""

from __future__ import annotations

import os

import pytest

from bench import chaos
from bench.harness.databases import PG_ADMIN_URL_ENV
from ecomflow.engine.config import get_settings
from tests.conftest import BACKEND, PG_ADMIN_URL

pytestmark = pytest.mark.e2e

# (seconds after the chaos starts, what): the worker mid-run early, Prefect while instances still start, then the API.
PLAN = ((4.0, "worker"), (10.0, "prefect"), (20.0, "api"), (26.0, "worker"))
# Bounds, not pauses: the drain ends once staff have nothing left and the settle once nothing moved twice in a
# row (a few seconds on an idle machine). They fit a 2-core machine running both lanes at once (load ~15, each
# process getting a fraction of a core): a run that failed on a killed process is retried by Prefect up to 6 × 5 s,
# a run left by the killed worker waits out its 3 s lease and the next recovery scan, and Prefect restarted on
# SQLite answers slowly at first. 30 s of settle was shorter than one retry budget plus a worker restart there.
DRAIN_S = 60
SETTLE_TIMEOUT_S = 150
PG_RESTART = os.environ.get("ECOMFLOW_CHAOS_PG_RESTART") == "1" and BACKEND == "postgresql"


def test_nothing_is_lost_or_done_twice_when_processes_are_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PG_ADMIN_URL_ENV, PG_ADMIN_URL)  # the test cluster, not the benchmarks' default
    # Settings are read once per process, and the stack points ECOMFLOW_* at its own database while it
    # runs: read them now, so the rest of the session keeps the test database.
    get_settings()
    plan = (*PLAN, (30.0, "postgresql")) if PG_RESTART else PLAN
    figures = chaos.run(
        BACKEND,
        instances=6,
        duration=32,
        seed=7,
        plan=plan,
        restart_postgresql=PG_RESTART,
        drain=DRAIN_S,
        settle_timeout=SETTLE_TIMEOUT_S,
    )
    chaos.print_report(figures)

    assert figures["chaos_error"] is None
    assert [kill.what for kill in figures["kills"] if kill.injected] == [what for _, what in plan]
    failed = {check.name: check.offenders for check in figures["checks"] if not check.passed}
    assert failed == {}
    counts = figures["counts"]
    assert sum(counts["instances"].values()) == 6
    assert counts["completes answered 200"] > 0
