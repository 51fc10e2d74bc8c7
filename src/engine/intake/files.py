"""Open an export as a stream of rows: CSV (UTF-8 with BOM, UTF-8, GBK/GB18030) or XLSX, never read whole.

Whole-file faults (undecodable bytes, a CSV cut inside a quoted field or a short last row, a broken XLSX) refuse
the file with a ValidationFailed naming the line and the rule; row faults are for rows.py.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed

BOM = codecs.BOM_UTF8
XLSX_SUFFIXES = (".xlsx", ".xlsm")
ZIP_MAGIC = b"PK\x03\x04"
# Bytes read at a time when sniffing the encoding: one pass, constant memory.
CHUNK = 1 << 20


def refuse(name: str, rule: str, message: str) -> ValidationFailed:
    """A whole-file refusal: the field is the file, the rule names what is wrong."""
    return ValidationFailed(f"{name}: {message}", problems=[FieldProblem(field="file", rule=rule, message=message)])


@dataclass
class Table:
    """An opened export: its header and its data rows as (line number, cells); `encoding` for the report."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    encoding: str


def detect_encoding(path: Path) -> str:
    """UTF-8 with BOM → utf-8-sig; else strict UTF-8 if every byte decodes; else GB18030 (a superset of GBK)."""
    with path.open("rb") as file:
        head = file.read(len(BOM))
        if head == BOM:
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")()
        chunk = head
        try:
            while chunk:
                decoder.decode(chunk)
                chunk = file.read(CHUNK)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


@contextmanager
def open_table(path: Path, *, name: str | None = None) -> Iterator[Table]:
    """Open a CSV or XLSX export for one streamed pass over its rows; `name` (as uploaded) decides which."""
    name = name or path.name
    if Path(name).suffix.lower() in XLSX_SUFFIXES:
        with _open_xlsx(path, name) as table:
            yield table
        return
    with path.open("rb") as raw:
        if raw.read(4) == ZIP_MAGIC:
            raise refuse(name, "format", "this is an XLSX workbook (a zip), not a CSV: give it an .xlsx name")
    encoding = detect_encoding(path)
    with path.open("rb") as raw:
        lines = _decoded_lines(raw, encoding, name)
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise refuse(name, "csv", f"line 1: the header is not CSV ({exc})") from None
        if not header or not any(cell.strip() for cell in header):
            raise refuse(name, "empty", "the file has no header row")
        yield Table(header=header, rows=_csv_rows(reader, len(header), name), encoding=encoding)


def _decoded_lines(raw: Any, encoding: str, name: str) -> Iterator[str]:
    """Decode line by line so that undecodable bytes are named by their line."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 0
    for number, data in enumerate(raw, start=1):
        try:
            yield decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise refuse(
                name, "encoding", f"line {number}: bytes that are not {_encoding_name(encoding)} ({exc.reason})"
            ) from None
    try:
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise refuse(name, "encoding", f"line {number}: the file ends inside a character") from None


def _encoding_name(encoding: str) -> str:
    return {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "gb18030": "GBK/GB18030 (nor UTF-8)"}[encoding]


def _csv_rows(reader: Any, width: int, name: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line, cells) of the non-blank rows; a cut quoted field or a short last row refuses the file."""
    pending: tuple[int, list[str]] | None = None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise refuse(
                name, "truncated", f"line {reader.line_num}: the file ends inside a quoted field ({exc})"
            ) from None
        if not any(cell.strip() for cell in cells):
            continue
        if pending is not None:
            yield pending
        pending = (reader.line_num, cells)
    if pending is not None:
        line, cells = pending
        if len(cells) < width:
            raise refuse(
                name, "truncated", f"line {line}: the last row has {len(cells)} of the header's {width} columns"
            )
        yield pending


@contextmanager
def _open_xlsx(path: Path, name: str) -> Iterator[Table]:
    # A file object, not the path: an upload's temp file has no .xlsx suffix for openpyxl to trust.
    with path.open("rb") as raw:
        try:
            book = load_workbook(raw, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
            raise refuse(name, "xlsx", f"not a readable XLSX workbook ({exc})") from None
        try:
            rows = book.worksheets[0].iter_rows(values_only=True)
            try:
                header = [cell_text(value) for value in next(rows, ())]
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise refuse(name, "xlsx", f"the first sheet cannot be read ({exc})") from None
            if not any(header):
                raise refuse(name, "empty", "the first sheet has no header row")
            yield Table(header=header, rows=_xlsx_rows(rows, name), encoding="xlsx")
        finally:
            book.close()


def _xlsx_rows(rows: Iterator[tuple[Any, ...]], name: str) -> Iterator[tuple[int, list[str]]]:
    number = 1
    try:
        for number, values in enumerate(rows, start=2):
            cells = [cell_text(value) for value in values]
            if any(cells):
                yield number, cells
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise refuse(name, "xlsx", f"row {number + 1}: the sheet cannot be read further ({exc})") from None


def cell_text(value: Any) -> str:
    """An XLSX cell as the text a CSV export would hold (times as 2026-12-01 10:30:00, whole numbers without .0)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
