"""SQL over JSON columns that both databases answer: is a string in a JSON array?"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class json_array_has(FunctionElement):  # noqa: N801 - used like the SQL function it compiles to
    """`column` (a JSON array of strings) holds `value`."""

    type = Boolean()
    inherit_cache = True
    name = "json_array_has"


@compiles(json_array_has, "sqlite")
def _json_array_has_sqlite(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, value = list(element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({compiler.process(column, **kw)}) "
        f"WHERE json_each.value = {compiler.process(value, **kw)})"
    )


@compiles(json_array_has, "postgresql")
def _json_array_has_postgresql(element: json_array_has, compiler: Any, **kw: Any) -> str:
    column, value = list(element.clauses)
    # The column is json (not jsonb); jsonb has the "contains this top-level string" operator. NULL holds nothing.
    return f"COALESCE(CAST({compiler.process(column, **kw)} AS JSONB) ? {compiler.process(value, **kw)}, false)"
