"""Each setting engine/db.py gives its connections, against its alternative, on an already seeded database.

Run from bench.inbox_latency after seeding (the 100k/1M database), so the figures are for that size:
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
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.stack import percentile

CLAIM = "UPDATE human_tasks SET state='claimed', assignee=?, version=version+1 WHERE id=? AND state='open' AND version=?"
READ = "SELECT state, version FROM human_tasks WHERE id=?"
BUMP = "UPDATE human_tasks SET version=version+1 WHERE id=?"
INBOX_READ = "SELECT id FROM human_tasks WHERE state='open' AND role=? ORDER BY due_at, id LIMIT 50"
JOURNAL_VARIANTS = {
    "WAL + synchronous=NORMAL (ours)": ("WAL", "NORMAL"),
    "WAL + synchronous=FULL": ("WAL", "FULL"),
    "rollback journal + synchronous=FULL (SQLite's defaults)": ("DELETE", "FULL"),
}


def _sqlite_path(url: str) -> str:
    return url.split("///", 1)[1]


def _connect(url: str, *, journal: str = "WAL", synchronous: str = "NORMAL", busy_ms: int = 30000) -> sqlite3.Connection:
    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None, timeout=busy_ms / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _latency_ms(durations: Sequence[float]) -> dict[str, float]:
    if not durations:
        return {"n": 0}
    ms = [d * 1000 for d in durations]
    return {"n": len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99)}


def _claims_per_s(durations: Sequence[float]) -> float:
    return round(len(durations) / sum(durations), 1) if durations else 0.0


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
        results[name] = {"latency_ms": _latency_ms(durations), "claims_per_s": _claims_per_s(durations)}
    _connect(url).close()  # back to WAL, which the database keeps
    return results


def _claimer(conn: sqlite3.Connection, tasks: Sequence[Any], *, begin: str, read_first: bool,
             outcome: dict[str, Any], lock: threading.Lock) -> None:
    for task in tasks:
        read = [(READ, (task.id,))] if read_first else []
        _timed_transaction(conn, [(begin, ()), *read, (CLAIM, (f"settings-{task.role}", task.id, task.version))],
                           outcome=outcome, lock=lock)


def _timed_transaction(conn: sqlite3.Connection, statements: Sequence[tuple[str, tuple]], *,
                       outcome: dict[str, Any], lock: threading.Lock) -> None:
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
            threading.Thread(target=_claimer, args=(conn, tasks[i::threads]),
                             kwargs={"begin": variant["begin"], "read_first": variant["read_first"], "outcome": outcome, "lock": lock})
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
            "claims": len(outcome["durations"]), "attempts": len(tasks), "errors": outcome["errors"],
            "claims_per_s": round(len(outcome["durations"]) / wall, 1) if wall else 0.0,
            "latency_ms": _latency_ms(outcome["durations"]),
        }
    return results


READ_PAUSE_S = 0.002
WRITE_PAUSE_S = 0.001
READ_VARIANTS = {
    "BEGIN DEFERRED + query_only (ours: read_scope)": ("BEGIN", "ON"),
    "BEGIN IMMEDIATE (every transaction, before read_scope)": ("BEGIN IMMEDIATE", "OFF"),
}


def _reader(conn: sqlite3.Connection, role: str, *, begin: str, writing: threading.Event, durations: list[float]) -> None:
    while writing.is_set():
        started = time.perf_counter()
        conn.execute(begin)
        conn.execute(INBOX_READ, (role,)).fetchall()
        conn.execute("COMMIT")
        durations.append(time.perf_counter() - started)
        # Paced as page loads are, not a hot loop: a reader that never lets go of the write lock starves the claims.
        time.sleep(READ_PAUSE_S)


def _writer(conn: sqlite3.Connection, tasks: Sequence[Any], *, until: float, outcome: dict[str, Any], lock: threading.Lock) -> None:
    """Until the deadline, write transactions of a claim's shape: take the lock, read the task, change its row, commit."""
    while time.perf_counter() < until:
        for task in tasks:
            _timed_transaction(conn, [("BEGIN IMMEDIATE", ()), (READ, (task.id,)), (BUMP, (task.id,))],
                               outcome=outcome, lock=lock)
            time.sleep(WRITE_PAUSE_S)  # busy, not saturated: unpaced, three writers made 55,000 transactions/s


def sqlite_reads_during_writes(url: str, chunks: Sequence[Sequence[Any]], *, writers: int = 3,
                               seconds: float = 3.0) -> dict[str, dict[str, Any]]:
    """One thread reads an inbox page every 2 ms while `writers` threads write for `seconds`, under each read variant."""
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
            threading.Thread(target=_writer, args=(conn, tasks[i::writers]), kwargs={"until": until, "outcome": outcome, "lock": lock})
            for i, conn in enumerate(writer_conns)
        ]
        reader = threading.Thread(target=_reader, args=(reader_conn, tasks[0].role),
                                  kwargs={"begin": begin, "writing": writing, "durations": reads})
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
            "reads": len(reads), "reads_per_s": round(len(reads) / wall, 1) if wall else 0.0,
            "read_ms": _latency_ms(reads) | ({"max": max(reads) * 1000} if reads else {}),
            "writes_per_s": round(len(outcome["durations"]) / wall, 1) if wall else 0.0, "errors": outcome["errors"],
        }
    return results


def pg_pre_ping(url: str, chunks: Sequence[Sequence[Any]], claim: Callable[[Any, Any], None]) -> dict[str, dict[str, Any]]:
    """claim(session, task) in a session per claim, from a pool with and without a ping on each checkout."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    results = {}
    driver_url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    for (name, pre_ping), tasks in zip({"pool_pre_ping on (ours)": True, "pool_pre_ping off": False}.items(), chunks, strict=False):
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
        results[name] = {"latency_ms": _latency_ms(durations), "claims_per_s": _claims_per_s(durations)}
    return results


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Report rows: one per variant."""
    out = []
    for name, result in figures.get("reads", {}).items():
        read = result["read_ms"]
        errors = ", ".join(f"{count}× {message}" for message, count in result["errors"].items()) or "none"
        out.append((f"setting: SQLite, an inbox read every 2 ms while 3 threads write (each every 1 ms) for 3 s: {name}",
                    f"{result['reads']} reads ({result['reads_per_s']:.0f}/s) · p50 {read['p50']:.2f} · p99 {read['p99']:.2f} · "
                    f"max {read['max']:.1f} ms · write transactions beside it {result['writes_per_s']:.0f}/s · errors: {errors}"))
    for group, label in (("journal", "SQLite, one claimer"), ("concurrent", "SQLite, 4 claimers at once"), ("pre_ping", "PostgreSQL engine claims")):
        for name, result in figures.get(group, {}).items():
            latency = result["latency_ms"]
            text = f"{result['claims_per_s']:.0f} claims/s"
            if latency.get("n"):
                text += f" · p50 {latency['p50']:.2f} · p99 {latency['p99']:.2f} ms"
            if "attempts" in result:
                errors = ", ".join(f"{count}× {message}" for message, count in result["errors"].items()) or "none"
                text += f" · {result['claims']} of {result['attempts']} claimed · errors: {errors}"
            out.append((f"setting: {label}: {name}", text))
    return out
