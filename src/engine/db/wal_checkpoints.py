"""Fold SQLite's write-ahead log into the database file on a thread of its own, not inside a request's commit.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that claim or
complete then copies about 4 MB back and syncs the file, the 15–20 ms p99 of single claims in
bench/RESULTS.md. Here a thread per engine checkpoints every second, and a commit checkpoints
itself only past a much larger log, which bounds the log should the thread not run.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref

from sqlalchemy import Engine, event

logger = logging.getLogger("ecomflow.db")

CHECKPOINT_EVERY_S = 1.0
COMMIT_CHECKPOINT_PAGES = 10_000  # ~40 MB of log at 4 KB pages


def checkpoint_in_background(engine: Engine, path: str, *, every: float = CHECKPOINT_EVERY_S) -> threading.Thread:
    """Start the engine's checkpoint thread; it ends when the engine is disposed or garbage-collected."""
    stop = threading.Event()
    engine_alive = weakref.ref(engine)
    thread = threading.Thread(
        target=_checkpoint_until, args=(path, stop, every, engine_alive), name="sqlite-wal-checkpoint", daemon=True
    )

    @event.listens_for(engine, "connect")
    def _leave_checkpoints_to_the_thread(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={COMMIT_CHECKPOINT_PAGES}")

    @event.listens_for(engine, "engine_disposed")
    def _stop(_engine: Engine) -> None:
        # Joined: a caller disposing the engine may need every connection to the file closed (a journal change).
        stop.set()
        thread.join(timeout=5)

    thread.start()
    return thread


def _checkpoint_until(path: str, stop: threading.Event, every: float, engine_alive: weakref.ref) -> None:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        while not stop.wait(every) and engine_alive() is not None:
            try:
                # PASSIVE never waits for readers or writers; what it cannot copy now, a later round does.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                logger.debug("checkpoint of %s failed; the next round retries", path, exc_info=True)
    finally:
        connection.close()
