"""SQLite's write-ahead log is folded back by the engine's own thread, not by the commit that fills it.

A SQLite file of its own under tmp_path on both test lanes: the mechanism is SQLite's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from ecomflow.engine.db.sessions import make_engine
from ecomflow.engine.db.wal_checkpoints import checkpoint_in_background

BLOB = 4000  # about a page each
ROWS = 1500  # past SQLite's default of a checkpoint in the commit at 1,000 pages


def _engine(tmp_path: Path, *, every: float) -> tuple[Engine, str, threading.Thread]:
    """An engine on a fresh file whose log its thread folds back every `every` seconds."""
    path = str(tmp_path / "wal.db")
    engine = make_engine(f"sqlite:///{path}")
    thread = checkpoint_in_background(engine, path, every=every)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (b BLOB)"))
    return engine, path, thread


def _fill_the_log(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO blobs VALUES (randomblob(:size))"), [{"size": BLOB}] * ROWS)


def test_a_commit_past_a_thousand_pages_leaves_the_log_to_the_thread(tmp_path: Path) -> None:
    engine, path, _ = _engine(tmp_path, every=3600)  # the thread waits: only a commit could fold the log now
    try:
        _fill_the_log(engine)
        assert os.path.getsize(path) < ROWS * BLOB / 10, "the commit copied the log into the file itself"
        assert os.path.getsize(path + "-wal") > ROWS * BLOB
    finally:
        engine.dispose()


def test_the_thread_folds_the_log_back(tmp_path: Path) -> None:
    engine, path, _ = _engine(tmp_path, every=0.05)
    try:
        _fill_the_log(engine)
        deadline = time.monotonic() + 10
        while os.path.getsize(path) < ROWS * BLOB and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.getsize(path) >= ROWS * BLOB, "the thread never copied the log into the file"
    finally:
        engine.dispose()


def test_disposing_the_engine_ends_its_thread(tmp_path: Path) -> None:
    engine, _, thread = _engine(tmp_path, every=3600)
    engine.dispose()
    assert not thread.is_alive()
