"""The embedded Prefect server: `prefect server start` with four changes, each measured in bench/RESULTS.md.

Prefect 3.9.1 begins most of its server transactions on SQLite as DEFERRED: they read, then ask
for the write lock. If another connection committed in between, SQLite refuses at once ("database
is locked"; the busy timeout cannot help a stale snapshot), the server answers 503 and Prefect's
client waits 2, 4, 8 … s. Resumes hit this most: in bench/throughput.py every resume met it and
the turnaround p95 was 14 s. Begun IMMEDIATE, writers queue on the busy timeout instead, as
Prefect already does for its set-state transactions.

    python -m ecomflow.prefect_server --host 127.0.0.1 --port 4200   # = prefect server start …

ECOMFLOW_PREFECT_SQLITE_IMMEDIATE=0 keeps Prefect's own behaviour (for the benchmarks' before/after).

Prefect's late-runs service is off unless PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED says otherwise: it
rewrites every run still Scheduled 15 s after its time to "Late", one state change and event each.
With 10,000 returns started in a burst it rewrote 7,876 runs, overflowed the server's event queue
(events dropped) and cut starts from ~7/s to under 1/s (bench.waiting_memory). Our worker takes
Scheduled and Late runs alike; runs waiting for it still show as Scheduled in the Prefect UI.

Its pause-expirations service is off too (PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED): every
5 s it loads every paused run, to fail those whose pause timed out, so its cost grows with the
number of people's tasks open (2,300 waiting returns: the server's top cost, starts under 1/s).
Our runs suspend with a ten-year timeout and our sweeper owns every deadline, so it never has
work for us.

Its flow policy refuses Running to a run that is not waiting (prefect_takes.py), so our worker takes a
run straight to Running instead of through Pending: one state change fewer per execution.
ECOMFLOW_PREFECT_RUNNING_TAKES=0 keeps Prefect's policy (the worker then finds takes unguarded and
goes through Pending, as for the benchmarks' before/after).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def take_sqlite_write_lock_at_begin() -> None:
    """Make every transaction the Prefect server begins on SQLite an IMMEDIATE one."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred_or_immediate = AioSqliteConfiguration.begin_transaction

    @asynccontextmanager
    async def begin_immediate(self, session, with_for_update: bool = False) -> AsyncIterator:
        async with deferred_or_immediate(self, session, with_for_update=True) as transaction:
            yield transaction

    AioSqliteConfiguration.begin_transaction = begin_immediate


def main(argv: list[str]) -> None:
    """Run `prefect server start` in this process with the change above."""
    for service in ("LATE_RUNS", "PAUSE_EXPIRATIONS"):
        os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
    if os.environ.get("ECOMFLOW_PREFECT_SQLITE_IMMEDIATE", "1") != "0":
        take_sqlite_write_lock_at_begin()
    if os.environ.get("ECOMFLOW_PREFECT_RUNNING_TAKES", "1") != "0":
        from ecomflow import prefect_takes

        prefect_takes.install()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *argv]  # Prefect's CLI reads its arguments from sys.argv
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
