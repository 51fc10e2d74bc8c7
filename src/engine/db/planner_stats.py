"""Fresh planner statistics while a bulk write grows tables: PostgreSQL's autovacuum analyzes them too late.

An import into an empty platform_orders planned each batch's lookup (platform = … AND order_no = ANY(1,000
ids)) from an empty table's statistics: an index scan on platform alone, every stored row then filtered
against the array. Each batch was slower than the last: 100,000 orders took 338 s wall on PostgreSQL, 10,000
took 8.5 s (bench/RESULTS.md, order_import). ANALYZE whenever the rows written have doubled keeps the plans
right for log2(n) ANALYZEs, each sampling at most 30,000 rows. SQLite plans by its indexes alone: nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session


class GrowthAnalyzer:
    """ANALYZE the tables after the first `first` rows written, then each time the count has doubled."""

    def __init__(self, tables: Sequence[str], *, first: int) -> None:
        self.tables = tuple(tables)
        self.next_at = first
        self.analyzed = 0

    def written(self, session: Session, rows: int) -> None:
        """Note the rows written so far (a running total); analyze if it reached the next mark."""
        if rows < self.next_at:
            return
        while self.next_at <= rows:
            self.next_at *= 2
        if session.get_bind().dialect.name != "postgresql":
            return
        for table in self.tables:
            session.execute(text(f"ANALYZE {table}"))
        self.analyzed += 1
