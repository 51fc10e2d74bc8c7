"""The SELECTs a call sends, caught in a rolled-back transaction, and their plans.

Before/after evidence for indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def captured_selects(url: str, work: Callable[[Any], Any]) -> list[tuple[str, Any]]:
    """Run work(session) in a transaction that is rolled back; return the distinct SELECTs on human_tasks it sent."""
    from sqlalchemy import event

    from ecomflow.engine.db.sessions import get_engine, get_sessionmaker

    engine, captured = get_engine(url), {}

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "human_tasks" in statement:
            captured.setdefault(statement, parameters)

    event.listen(engine, "before_cursor_execute", grab)
    session = get_sessionmaker(url)()
    try:
        work(session)
    finally:
        session.rollback()
        session.close()
        event.remove(engine, "before_cursor_execute", grab)
    return list(captured.items())


def explain(url: str, statement: str, parameters: Any) -> list[str]:
    """Return the plan of a statement: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL."""
    from ecomflow.engine.db.sessions import get_engine

    sqlite = url.startswith("sqlite")
    with get_engine(url).connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    if not sqlite:
        return [row[0] for row in rows]
    depth, lines = {0: -1}, []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines
