"""The embedded Prefect server: `prefect server start` with six changes, each measured in bench/RESULTS.md.

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

On PostgreSQL its connection pool keeps 15 connections instead of Prefect's 5 (PREFECT_SERVER_DATABASE_
SQLALCHEMY_POOL_SIZE still wins). The server's requests and services use 9 to 16 at once under load: with 5
kept, every connection past them was opened for one checkout and closed again, about 6 new PostgreSQL
sessions a second in bench/throughput.py (388 in a run; 19 with a pool of 20), each a backend to fork and a
connection whose statement cache and type codecs asyncpg had to build again. PostgreSQL's CPU in the
measured window fell from 14.3 to 9.1 s (bench/RESULTS.md). Up to 10 more may still open at a peak, as before.

On PostgreSQL it hands asyncpg plain datetimes. On Python before 3.13 Prefect's timestamps are pendulum
DateTimes, and asyncpg encodes one by subtracting its epoch: pendulum builds an Interval (years, months, a
warning wrapper) for each, 110 µs against 0.5 µs for a plain one (timeit on a loaded 2-core machine), the largest
single cost in profiles of the server (bench/RESULTS.md). The same instant goes to the database (on SQLite too,
where it costs nothing measurable either way); on 3.13 Prefect's are plain already.
ECOMFLOW_PREFECT_PLAIN_DATETIMES=0 keeps Prefect's binding.

Its flow policy refuses Running to a run that is not waiting (prefect_takes.py), so our worker takes a
run straight to Running instead of through Pending: one state change fewer per execution.
ECOMFLOW_PREFECT_RUNNING_TAKES=0 keeps Prefect's policy (the worker then finds takes unguarded and
goes through Pending, as for the benchmarks' before/after).
"""

from __future__ import annotations

import datetime
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


def bind_plain_datetimes() -> None:
    """Make Prefect's Timestamp columns bind plain datetimes (the same instant, in the zone Prefect binds)."""
    from prefect.server.utilities.database import Timestamp

    bind_aware = Timestamp.process_bind_param

    def bind_plain(self, value: datetime.datetime | None, dialect):
        value = bind_aware(self, value, dialect)
        if value is None or type(value).__sub__ is datetime.datetime.__sub__:
            return value
        return datetime.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
            fold=value.fold,
        )

    Timestamp.process_bind_param = bind_plain


# Prefect settings this server starts with unless the environment sets them (see above for each).
SERVER_DEFAULTS = {
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "15",
}


def apply_server_defaults() -> None:
    """Set each of SERVER_DEFAULTS in this process's environment unless it is set already."""
    for name, value in SERVER_DEFAULTS.items():
        os.environ.setdefault(name, value)


def main(argv: list[str]) -> None:
    """Run `prefect server start` in this process with the changes above."""
    apply_server_defaults()
    if os.environ.get("ECOMFLOW_PREFECT_SQLITE_IMMEDIATE", "1") != "0":
        take_sqlite_write_lock_at_begin()
    if os.environ.get("ECOMFLOW_PREFECT_PLAIN_DATETIMES", "1") != "0":
        bind_plain_datetimes()
    if os.environ.get("ECOMFLOW_PREFECT_RUNNING_TAKES", "1") != "0":
        from ecomflow import prefect_takes

        prefect_takes.install()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *argv]  # Prefect's CLI reads its arguments from sys.argv
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
