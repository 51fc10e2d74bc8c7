"""The checked records of an import, held on disk between the check pass and the writes: memory stays flat.

A throwaway SQLite file: records in file order, order lines keyed by their order number, so that the two
Tmall files (订单报表 + 宝贝报表) join, and JD's rows (one per line) group, whatever order their rows come in.
"""

from __future__ import annotations

import copy
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecomflow.engine.intake.records import OrderLineRecord, OrderRecord


class Staging:
    """Records by key in first-seen order, and order lines by order number."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ecomflow-import-")
        self._db = sqlite3.connect(Path(self._dir.name) / "staging.db")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, line INTEGER, data BLOB)")
        self._db.execute("CREATE TABLE lines (seq INTEGER PRIMARY KEY, order_no TEXT, line INTEGER, data BLOB)")
        self._db.execute("CREATE INDEX lines_by_order ON lines (order_no, seq)")

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def line_of(self, key: str) -> int | None:
        """The file line of the record already staged under the key, if any."""
        row = self._db.execute("SELECT line FROM records WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def add(self, key: str, line: int, record: Any) -> int | None:
        """Stage the record under its key; if the key is taken, stage nothing and return the line that has it."""
        try:
            self._db.execute(
                "INSERT INTO records (key, line, data) VALUES (?, ?, ?)", (key, line, pickle.dumps(record))
            )
        except sqlite3.IntegrityError:
            return self.line_of(key)
        return None

    def add_line(self, order_no: str, line: int, record: OrderLineRecord) -> None:
        self._db.execute(
            "INSERT INTO lines (order_no, line, data) VALUES (?, ?, ?)", (order_no, line, pickle.dumps(record))
        )

    def drop(self, key: str) -> int | None:
        """Remove the record under the key and the lines of that order; return the record's line, if it was staged."""
        line = self.line_of(key)
        self._db.execute("DELETE FROM records WHERE key = ?", (key,))
        self._db.execute("DELETE FROM lines WHERE order_no = ?", (key,))
        return line

    def count(self) -> int:
        return self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    def orphan_lines(self) -> Iterator[tuple[int, str]]:
        """(line, order number) of the lines whose order is not staged."""
        query = "SELECT line, order_no FROM lines WHERE order_no NOT IN (SELECT key FROM records) ORDER BY seq"
        yield from self._db.execute(query)

    def batches(self, size: int, *, with_lines: bool) -> Iterator[list[Any]]:
        """The records in file order, `size` at a time; orders with their lines attached."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, key, data FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, size)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            records = [pickle.loads(data) for _, _, data in rows]
            if with_lines:
                records = self._attach_lines(records)
            yield records

    def _attach_lines(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        keys = [order.order_no for order in orders]
        found: dict[str, list[OrderLineRecord]] = {}
        marks = ",".join("?" * len(keys))
        query = f"SELECT order_no, data FROM lines WHERE order_no IN ({marks}) ORDER BY seq"
        for order_no, data in self._db.execute(query, keys):
            found.setdefault(order_no, []).append(pickle.loads(data))
        return [_with_lines(order, tuple(found.get(order.order_no, ()))) for order in orders]


def _with_lines(order: OrderRecord, lines: tuple[OrderLineRecord, ...]) -> OrderRecord:
    """A copy of the order with its lines: copy.copy and one set, not dataclasses.replace's full __init__
    (profiled: a tenth of the write pass)."""
    joined = copy.copy(order)
    object.__setattr__(joined, "lines", lines)
    return joined
