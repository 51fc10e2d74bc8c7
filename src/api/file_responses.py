"""File downloads made while they are sent: a table streamed as CSV or XLSX."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.reports.tabular import MEDIA_TYPES, Column, ExportFormat, table_chunks


def stream_table(
    fmt: ExportFormat,
    *,
    name: str,
    columns: tuple[Column, ...],
    rows_of: Callable[[Session], Iterator[list[Any]]],
    timezone: str,
) -> StreamingResponse:
    """Stream a table as a file download; the rows are read in their own session while the file is written."""

    def chunks() -> Iterator[bytes]:
        with read_scope() as session:
            yield from table_chunks(fmt, name, columns, rows_of(session), zone=ZoneInfo(timezone))

    return StreamingResponse(
        chunks(),
        media_type=MEDIA_TYPES[fmt.value],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"', "Cache-Control": "no-store"},
    )
