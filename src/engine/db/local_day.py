"""SQL for "the local day of a stored time" that both databases answer alike (stored times are naive UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class local_day(FunctionElement):  # noqa: N801 - used like the SQL function it compiles to
    """The 'YYYY-MM-DD' day of `column` shifted by a fixed offset of whole minutes."""

    type = String()
    # The offset is an attribute, not a clause, so the statement cache must not reuse one offset's SQL for another.
    inherit_cache = False
    name = "local_day"

    def __init__(self, column: Any, offset_minutes: int) -> None:
        self.offset_minutes = int(offset_minutes)
        super().__init__(column)


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"date({compiler.process(column, **kw)}, '{element.offset_minutes:+d} minutes')"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element: local_day, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"to_char({compiler.process(column, **kw)} + interval '{element.offset_minutes:d} minutes', 'YYYY-MM-DD')"


def fixed_offset_minutes(zone: ZoneInfo, start: datetime, end: datetime) -> int:
    """Return the zone's UTC offset over [start, end), refusing a range across an offset change (DST)."""
    first, last = start.astimezone(zone).utcoffset(), (end - timedelta(seconds=1)).astimezone(zone).utcoffset()
    if first != last or first is None:
        raise ValueError(f"{zone.key} changes its UTC offset between {start} and {end}; report each side apart")
    return int(first.total_seconds() // 60)
