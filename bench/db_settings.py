"""Each setting engine/db.py gives its connections, against its alternative, on an already seeded database.

Run on its own (it seeds a fresh database of the asked size first) or from bench.inbox_latency after
seeding (the 100k/1M database), so the figures are for that size. Each comparison's baseline is the
plain or previous setting:
- SQLite journal and sync: WAL + synchronous=NORMAL (ours) vs WAL + FULL vs SQLite's defaults
  (rollback journal, FULL), a compare-and-set claim and a commit per claim, one connection;
- SQLite busy timeout and write-first transactions: four threads claiming at once, as the API's
  workers do: BEGIN IMMEDIATE + busy_timeout (ours) vs no busy timeout vs BEGIN DEFERRED that
  reads before it writes (the shape of claim_task);
- SQLite read transactions: a staff inbox read every 2 ms while three threads write for 3 s, each a
  transaction every 1 ms of a claim's shape (lock, read the task, change its row, commit), as GET
  /tasks runs beside claims and completes: BEGIN DEFERRED with query_only (ours, read_scope) vs BEGIN
  IMMEDIATE, which every transaction of ours used before;
- PostgreSQL connection pool: claim_task in a session per claim with pool_pre_ping (ours) and without.

    cd /work/main && .venv/bin/python -m bench.db_settings --db sqlite --open 100000 --closed 100000 [--record]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.harness.databases import fresh_database, migrate, sqlite_path
from bench.harness.logs import finish_data_dir, make_data_dir
from bench.harness.options import add_common_options, setting_of
from bench.harness.recording import Entry, record_run
from bench.harness.report import print_rows
from bench.harness.sampling import loadavg
from bench.harness.seeding import OpenTask, pick_open_tasks, seed
from bench.harness.timing import rate, summarize

CLAIM = (
    "UPDATE human_tasks SET state='claimed', assignee=?, version=version+1 WHERE id=? AND state='open' AND version=?"
)
READ = "SELECT state, version FROM human_tasks WHERE id=?"
BUMP = "UPDATE human_tasks SET version=version+1 WHERE id=?"
INBOX_READ = "SELECT id FROM human_tasks WHERE state='open' AND role=? ORDER BY due_at, id LIMIT 50"
JOURNAL_VARIANTS = {
    "WAL + synchronous=NORMAL (ours)": ("WAL", "NORMAL"),
    "WAL + synchronous=FULL": ("WAL", "FULL"),
    "rollback journal + synchronous=FULL (SQLite's defaults)": ("DELETE", "FULL"),
}


def _connect(
    url: str, *, journal: str = "WAL", synchronous: str = "NORMAL", busy_ms: int = 30000
) -> sqlite3.Connection:
    """Open a SQLite connection of our own with the journal, sync and busy timeout asked."""
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=busy_ms / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def sqlite_journal(url: str, chunks: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """One claim + commit at a time under each journal/sync variant; every other connection must be closed."""
    results = {}
    for (name, (journal, synchronous)), tasks in zip(JOURNAL_VARIANTS.items(), chunks, strict=False):
        conn = _connect(url, journal=journal, synchronous=synchronous)
        durations = []
        try:
            for task in tasks:
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(CLAIM, (f"settings-{task.role}", task.id, task.version))
                conn.execute("COMMIT")
                durations.append(time.perf_counter() - started)
        finally:
            conn.close()
        results[name] = {"latency_ms": summarize(durations, scale=1000), "claims_per_s": rate(durations)}
    _connect(url).close()  # back to WAL, which the database keeps
    return results


def _claimer(
    conn: sqlite3.Connection,
    tasks: Sequence[Any],
    *,
    begin: str,
    read_first: bool,
    outcome: dict[str, Any],
    lock: threading.Lock,
) -> None:
    """Claim each task in a transaction of its own, as the variant begins it."""
    for task in tasks:
        read = [(READ, (task.id,))] if read_first else []
        _timed_transaction(
            conn,
            [(begin, ()), *read, (CLAIM, (f"settings-{task.role}", task.id, task.version))],
            outcome=outcome,
            lock=lock,
        )


def _timed_transaction(
    conn: sqlite3.Connection, statements: Sequence[tuple[str, tuple]], *, outcome: dict[str, Any], lock: threading.Lock
) -> None:
    """Run the statements (the first begins) and commit; record the duration, or the error that ended it."""
    started = time.perf_counter()
    try:
        for sql, params in statements:
            conn.execute(sql, params).fetchall()
        conn.execute("COMMIT")
    except sqlite3.OperationalError as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with lock:
            outcome["errors"][str(error)] = outcome["errors"].get(str(error), 0) + 1
        return
    with lock:
        outcome["durations"].append(time.perf_counter() - started)


CONCURRENT_VARIANTS: dict[str, dict[str, Any]] = {
    "BEGIN IMMEDIATE + busy_timeout 30 s (ours)": {"begin": "BEGIN IMMEDIATE", "read_first": True, "busy_ms": 30000},
    "BEGIN IMMEDIATE, no busy timeout": {"begin": "BEGIN IMMEDIATE", "read_first": True, "busy_ms": 0},
    "BEGIN DEFERRED (read, then write) + busy_timeout 30 s": {"begin": "BEGIN", "read_first": True, "busy_ms": 30000},
}


def sqlite_concurrent(url: str, chunks: Sequence[Sequence[Any]], *, threads: int = 4) -> dict[str, dict[str, Any]]:
    """Claim from several threads at once (each its own connection) under each transaction variant."""
    results = {}
    for (name, variant), tasks in zip(CONCURRENT_VARIANTS.items(), chunks, strict=False):
        outcome: dict[str, Any] = {"durations": [], "errors": {}}
        lock = threading.Lock()
        connections = [_connect(url, busy_ms=variant["busy_ms"]) for _ in range(threads)]
        workers = [
            threading.Thread(
                target=_claimer,
                args=(conn, tasks[i::threads]),
                kwargs={
                    "begin": variant["begin"],
                    "read_first": variant["read_first"],
                    "outcome": outcome,
                    "lock": lock,
                },
            )
            for i, conn in enumerate(connections)
        ]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
        for conn in connections:
            conn.close()
        results[name] = {
            "claims": len(outcome["durations"]),
            "attempts": len(tasks),
            "errors": outcome["errors"],
            "claims_per_s": round(len(outcome["durations"]) / wall, 1) if wall else 0.0,
            "latency_ms": summarize(outcome["durations"], scale=1000),
        }
    return results


READ_PAUSE_S = 0.002
WRITE_PAUSE_S = 0.001
READ_VARIANTS = {
    "BEGIN DEFERRED + query_only (ours: read_scope)": ("BEGIN", "ON"),
    "BEGIN IMMEDIATE (every transaction, before read_scope)": ("BEGIN IMMEDIATE", "OFF"),
}


def _reader(
    conn: sqlite3.Connection, role: str, *, begin: str, writing: threading.Event, durations: list[float]
) -> None:
    """Read a staff inbox page, as the variant begins its transaction, every 2 ms while the writers write."""
    while writing.is_set():
        started = time.perf_counter()
        conn.execute(begin)
        conn.execute(INBOX_READ, (role,)).fetchall()
        conn.execute("COMMIT")
        durations.append(time.perf_counter() - started)
        # Paced as page loads are, not a hot loop: a reader that never lets go of the write lock starves the claims.
        time.sleep(READ_PAUSE_S)


def _writer(
    conn: sqlite3.Connection, tasks: Sequence[Any], *, until: float, outcome: dict[str, Any], lock: threading.Lock
) -> None:
    """Until the deadline, write claim-shaped transactions: take the lock, read the task, change its row, commit."""
    while time.perf_counter() < until:
        for task in tasks:
            _timed_transaction(
                conn, [("BEGIN IMMEDIATE", ()), (READ, (task.id,)), (BUMP, (task.id,))], outcome=outcome, lock=lock
            )
            time.sleep(WRITE_PAUSE_S)  # busy, not saturated: unpaced, three writers made 55,000 transactions/s


def sqlite_reads_during_writes(
    url: str, chunks: Sequence[Sequence[Any]], *, writers: int = 3, seconds: float = 3.0
) -> dict[str, dict[str, Any]]:
    """One thread reads an inbox page every 2 ms while `writers` threads write for `seconds`, per read variant."""
    results = {}
    for (name, (begin, query_only)), tasks in zip(READ_VARIANTS.items(), chunks, strict=False):
        outcome: dict[str, Any] = {"durations": [], "errors": {}}
        lock, writing, reads = threading.Lock(), threading.Event(), []
        reader_conn = _connect(url)
        reader_conn.execute(f"PRAGMA query_only={query_only}")
        writer_conns = [_connect(url) for _ in range(writers)]
        started = time.perf_counter()
        until = started + seconds
        claimers = [
            threading.Thread(
                target=_writer,
                args=(conn, tasks[i::writers]),
                kwargs={"until": until, "outcome": outcome, "lock": lock},
            )
            for i, conn in enumerate(writer_conns)
        ]
        reader = threading.Thread(
            target=_reader,
            args=(reader_conn, tasks[0].role),
            kwargs={"begin": begin, "writing": writing, "durations": reads},
        )
        writing.set()
        reader.start()
        for claimer in claimers:
            claimer.start()
        for claimer in claimers:
            claimer.join()
        wall = time.perf_counter() - started
        writing.clear()
        reader.join()
        for conn in (reader_conn, *writer_conns):
            conn.close()
        results[name] = {
            "reads": len(reads),
            "reads_per_s": round(len(reads) / wall, 1) if wall else 0.0,
            "read_ms": summarize(reads, scale=1000),
            "writes_per_s": round(len(outcome["durations"]) / wall, 1) if wall else 0.0,
            "errors": outcome["errors"],
        }
    return results


def pg_pre_ping(
    url: str, chunks: Sequence[Sequence[Any]], claim: Callable[[Any, Any], None]
) -> dict[str, dict[str, Any]]:
    """claim(session, task) in a session per claim, from a pool with and without a ping on each checkout."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    results = {}
    driver_url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    for (name, pre_ping), tasks in zip(
        {"pool_pre_ping on (ours)": True, "pool_pre_ping off": False}.items(), chunks, strict=False
    ):
        engine = create_engine(driver_url, pool_size=10, max_overflow=20, pool_pre_ping=pre_ping, hide_parameters=True)
        make_session = sessionmaker(bind=engine, expire_on_commit=False)
        durations = []
        try:
            for task in tasks:
                started = time.perf_counter()
                with make_session() as session, session.begin():
                    claim(session, task)
                durations.append(time.perf_counter() - started)
        finally:
            engine.dispose()
        results[name] = {"latency_ms": summarize(durations, scale=1000), "claims_per_s": rate(durations)}
    return results


def _claim_as_role(session: Any, task: OpenTask) -> None:
    """Claim the task with claim_task as a bench user of its role."""
    from ecomflow.engine.people.principals import Principal
    from ecomflow.engine.tasks.actions import claim_task

    claim_task(session, task_id=task.id, principal=Principal(name=f"bench-{task.role}", roles=frozenset({task.role})))


# Comparisons by database, each with the number of chunks of open tasks it claims.
CHUNKS = {"sqlite": 8, "postgresql": 2}


def compare(url: str, chunks: Sequence[Sequence[OpenTask]]) -> dict[str, Any]:
    """Measure each connection setting of engine/db.py against its alternative.

    chunks: CHUNKS[db] lists of open tasks.
    """
    from ecomflow.engine.db.sessions import get_engine

    if url.startswith("sqlite"):
        get_engine(url).dispose()  # the journal mode changes only with no other connection open
        return {
            "journal": sqlite_journal(url, chunks[:3]),
            "concurrent": sqlite_concurrent(url, chunks[3:6]),
            "reads": sqlite_reads_during_writes(url, chunks[6:8]),
        }
    return {"pre_ping": pg_pre_ping(url, chunks[:2], _claim_as_role)}


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{count}× {message}" for message, count in errors.items()) or "none"


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the report rows: one per variant."""
    out = []
    for name, result in figures.get("reads", {}).items():
        read = result["read_ms"]
        out.append(
            (
                f"setting: SQLite, an inbox read every 2 ms while 3 threads write (each every 1 ms) for 3 s: {name}",
                f"{result['reads']} reads ({result['reads_per_s']:.0f}/s) · "
                f"p50 {read['p50']:.2f} · p99 {read['p99']:.2f} · "
                f"max {read['max']:.1f} ms · write transactions beside it {result['writes_per_s']:.0f}/s · "
                f"errors: {_errors_text(result['errors'])}",
            )
        )
    for group, label in (
        ("journal", "SQLite, one claimer"),
        ("concurrent", "SQLite, 4 claimers at once"),
        ("pre_ping", "PostgreSQL engine claims"),
    ):
        for name, result in figures.get(group, {}).items():
            latency = result["latency_ms"]
            text = f"{result['claims_per_s']:.0f} claims/s"
            if latency.get("n"):
                text += f" · p50 {latency['p50']:.2f} · p99 {latency['p99']:.2f} ms"
            if "attempts" in result:
                text += (
                    f" · {result['claims']} of {result['attempts']} claimed · errors: {_errors_text(result['errors'])}"
                )
            out.append((f"setting: {label}: {name}", text))
    return out


def _times(ours: float, other: float) -> str:
    return f"{ours / other:.2f}×" if other else "—"


def ratio_text(figures: dict[str, Any]) -> str:
    """Return ours against each alternative: claims/s, claims that got through, or read p99 (ours is the first)."""
    parts = []
    for group, measure in (("journal", "claims/s"), ("pre_ping", "claims/s")):
        if variants := list(figures.get(group, {}).items()):
            (_, ours), *others = variants
            parts.append(
                f"{measure} of ours vs "
                + ", ".join(f"{name}: {_times(ours['claims_per_s'], other['claims_per_s'])}" for name, other in others)
            )
    if variants := list(figures.get("concurrent", {}).items()):
        parts.append(
            "4 claimers at once, claimed of attempted: "
            + ", ".join(f"{name} {result['claims']}/{result['attempts']}" for name, result in variants)
        )
    if variants := list(figures.get("reads", {}).items()):
        (_, ours), *others = variants
        parts.append(
            "inbox read p99 beside writers, ours vs "
            + ", ".join(
                f"{name}: {_times(ours['read_ms'].get('p99', 0), other['read_ms'].get('p99', 0))}"
                for name, other in others
            )
        )
    return "against the alternatives: " + "; ".join(parts)


def entry(figures: dict[str, Any], *, setting: str) -> Entry:
    """Return the RESULTS.md entry of a comparison: a row per variant and ours against the others."""
    return Entry(
        benchmark="db_settings",
        setting=setting,
        ratio=ratio_text(figures),
        rows=[(name.removeprefix("setting: "), value) for name, value in rows(figures)],
    )


def run(
    db: str, *, open_tasks: int, closed_tasks: int, claims: int, seed_value: int, keep_data: bool = False
) -> dict[str, Any]:
    """Seed a fresh database of the asked size, compare the settings on it, drop it; return the figures."""
    rng = random.Random(seed_value)
    data_dir = make_data_dir(f"ecomflow-bench-settings-{db}-")
    figures: dict[str, Any] = {"db": db, "load_before": loadavg(), "data_dir": str(data_dir)}
    failed = True
    try:
        with fresh_database(db, data_dir) as url:
            figures["migrate_s"] = round(migrate(url), 1)
            figures["seed"] = {
                k: v
                for k, v in seed(url, open_tasks=open_tasks, closed_tasks=closed_tasks, rng=rng).items()
                if k != "tokens"
            }
            tasks = pick_open_tasks(url, rng=rng, count=CHUNKS[db] * claims)
            figures["settings"] = compare(url, [tasks[i * claims : (i + 1) * claims] for i in range(CHUNKS[db])])
        failed = False
    finally:
        finish_data_dir(data_dir, keep=keep_data or failed)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison from the command line; print its rows and, with --record, record them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.db_settings", description=__doc__.split("\n\n")[0])
    add_common_options(parser, prefect_db=False, env=False)
    parser.add_argument("--open", type=int, default=100_000, help="open or claimed tasks to seed")
    parser.add_argument("--closed", type=int, default=100_000, help="completed tasks to seed")
    parser.add_argument("--claims", type=int, default=200, help="tasks each variant claims")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    args = parser.parse_args(argv)
    figures = run(
        args.db,
        open_tasks=args.open,
        closed_tasks=args.closed,
        claims=args.claims,
        seed_value=args.seed,
        keep_data=args.keep,
    )
    print_rows(rows(figures["settings"]))
    print(ratio_text(figures["settings"]))
    if args.record:
        record_run(
            entry(figures["settings"], setting=setting_of(args)),
            module="bench.db_settings",
            argv=argv,
            load_before=figures["load_before"],
        )
    return figures


if __name__ == "__main__":
    main()
