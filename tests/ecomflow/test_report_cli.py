"""The ecomflow command: report daily."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from ecomflow.cli import app
from ecomflow.engine.clock import utcnow
from tests.factories import add_task_row, make_instance

runner = CliRunner()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _today_in_shanghai() -> str:
    return utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


class TestReportDaily:
    def test_prints_the_days_report_as_markdown(self, clean_db: str) -> None:
        add_task_row(
            instance_id=make_instance(),
            state="completed",
            created_at=utc("2025-03-02T01:00"),
            events=(("task.claimed", utc("2025-03-02T02:00")),),
            completed_at=utc("2025-03-02T05:00"),
            completed_by="wu",
            assignee="wu",
            due_at=utc("2025-03-02T06:00"),
        )
        result = runner.invoke(app, ["report", "daily", "--date", "2025-03-02"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("# 日报表 / Daily report — 2025-03-02\n")
        assert "## 按人员 / By person" in result.output
        assert "| wu | 1 | 4.0 / 4.0 | 1.0 | 0.0 | 3.0 | 100% | 0% | 0 | 0 |" in result.output

    def test_the_date_defaults_to_today_in_the_teams_zone(self, clean_db: str) -> None:
        before = _today_in_shanghai()
        result = runner.invoke(app, ["report", "daily"])
        after = _today_in_shanghai()
        assert result.exit_code == 0, result.output
        # Read before and after: a run straddling local midnight reports on either day.
        heading = result.output.splitlines()[0]
        assert heading in {f"# 日报表 / Daily report — {day}" for day in (before, after)}

    @pytest.mark.parametrize("bad", ["2025-02-30", "20250302", "yesterday"])
    def test_a_bad_date_is_refused_with_exit_code_2(self, clean_db: str, bad: str) -> None:
        result = runner.invoke(app, ["report", "daily", "--date", bad])
        assert result.exit_code == 2
        assert "--date must be a date as YYYY-MM-DD" in result.output and bad in result.output


class TestReportDailyXlsx:
    def test_writes_the_workbook_beside_the_markdown(self, clean_db: str, tmp_path: Path) -> None:
        target = tmp_path / "日报表.xlsx"
        result = runner.invoke(app, ["report", "daily", "--date", "2025-03-02", "--xlsx", str(target)])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("# 日报表 / Daily report — 2025-03-02\n")
        book = load_workbook(target)
        assert book.sheetnames == ["销售", "退款", "活动报名", "逾期任务", "任务KPI"]
        assert [c.value for c in book["销售"][2]][:3] == ["当日合计", 0, 0]

    def test_an_unwritable_file_is_refused_with_exit_code_2(self, clean_db: str, tmp_path: Path) -> None:
        result = runner.invoke(app, ["report", "daily", "--xlsx", str(tmp_path / "missing" / "r.xlsx")])
        assert result.exit_code == 2
        assert "--xlsx cannot write" in result.output
