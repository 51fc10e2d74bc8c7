"""Write a table as CSV or XLSX in chunks, so an export of any length never sits in memory whole.

CSV: UTF-8 with a byte-order mark (Excel then reads the Chinese right), one chunk per CHUNK_ROWS rows.
XLSX: openpyxl's write-only workbook (rows go to a temporary file as they come), then the file in chunks.
Text that a spreadsheet would run as a formula (=, +, -, @ first) is written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

CHUNK_ROWS = 500
FILE_CHUNK = 64 * 1024
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class Column:
    """A column: its header, width (characters) and XLSX number format."""

    header: str
    width: int = 14
    number_format: str | None = None


def safe_text(value: str) -> str:
    """Return text a spreadsheet shows as text: a would-be formula gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _cell_value(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        # Spreadsheets have no time zones: the team's wall-clock time.
        return value.astimezone(zone).replace(tzinfo=None)
    if isinstance(value, str):
        return safe_text(value)
    return value


def _csv_text(value: Any, zone: ZoneInfo) -> str:
    value = _cell_value(value, zone)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value) if not isinstance(value, Decimal) else f"{value:f}"


def csv_chunks(columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, zone: ZoneInfo) -> Iterator[bytes]:
    """Yield the table as CSV bytes, a header then CHUNK_ROWS rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.header for c in columns])
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0), buffer.truncate()
    for count, row in enumerate(rows, 1):
        writer.writerow([_csv_text(v, zone) for v in row])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0), buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def xlsx_chunks(
    title: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, zone: ZoneInfo
) -> Iterator[bytes]:
    """Yield the table as an XLSX file: a write-only sheet with a bold header, then the file's bytes in chunks."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    for index, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            cell = WriteOnlyCell(sheet, value=_cell_value(value, zone))
            if column.number_format is not None:
                cell.number_format = column.number_format
            cells.append(cell)
        sheet.append(cells)
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        book.save(path)
        with open(path, "rb") as file:
            while chunk := file.read(FILE_CHUNK):
                yield chunk
    finally:
        os.unlink(path)


def table_chunks(
    fmt: ExportFormat, title: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, zone: ZoneInfo
) -> Iterator[bytes]:
    """Yield the table in the chosen format."""
    if fmt is ExportFormat.CSV:
        return csv_chunks(columns, rows, zone=zone)
    return xlsx_chunks(title, columns, rows, zone=zone)
