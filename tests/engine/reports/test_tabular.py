"""Tables written as CSV or XLSX in chunks: headers, formats, local times, and no formula injection."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from ecomflow.engine.reports import tabular
from ecomflow.engine.reports.tabular import Column, csv_chunks, xlsx_chunks

pytestmark = pytest.mark.db_independent

ZONE = ZoneInfo("Asia/Shanghai")
COLUMNS = (Column("名称 Name", 20), Column("金额 Amount", 12, "#,##0.00"), Column("时间 At", 18, "yyyy-mm-dd hh:mm"))
ROWS = [
    ['=HYPERLINK("http://x")', Decimal("1234.50"), datetime(2026, 11, 10, 16, 0, tzinfo=UTC)],
    ["茶杯", None, None],
]


class TestCsv:
    def test_bom_header_local_times_and_guarded_formulas(self) -> None:
        text = b"".join(csv_chunks(COLUMNS, ROWS, zone=ZONE)).decode("utf-8")
        assert text.startswith("\ufeff名称 Name,金额 Amount,时间 At\r\n")
        lines = text.splitlines()
        assert lines[1] == '"\'=HYPERLINK(""http://x"")",1234.50,2026-11-11 00:00:00'
        assert lines[2] == "茶杯,,"

    def test_long_tables_come_in_chunks(self, monkeypatch) -> None:
        monkeypatch.setattr(tabular, "CHUNK_ROWS", 10)
        chunks = list(csv_chunks(COLUMNS, (["x", Decimal(n), None] for n in range(25)), zone=ZONE))
        # The header, two full chunks of 10 rows and the 5 left over.
        assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 10, 10, 5]


class TestXlsx:
    def test_a_write_only_sheet_with_bold_header_and_number_formats(self) -> None:
        book = load_workbook(BytesIO(b"".join(xlsx_chunks("导出", COLUMNS, ROWS, zone=ZONE))))
        sheet = book["导出"]
        assert [c.value for c in sheet[1]] == ["名称 Name", "金额 Amount", "时间 At"]
        assert all(c.font.bold for c in sheet[1])
        assert sheet["A2"].value == '\'=HYPERLINK("http://x")' and sheet["A2"].data_type == "s"
        assert (sheet["B2"].value, sheet["B2"].number_format) == (1234.5, "#,##0.00")
        assert sheet["C2"].value == datetime(2026, 11, 11, 0, 0)
        assert sheet.column_dimensions["A"].width == 20
