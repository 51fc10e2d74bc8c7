"""Importing generated 生意参谋 and 直通车/钻展 reports: stored exactly, idempotent, corrected, rejected by line."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.platform_models import AdDay, TrafficDay
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.intake import importer
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.sample_exports import write_export

pytestmark = pytest.mark.usefixtures("clean_db")


def run(kind: str, path: Path, *, ad_source: str | None = None) -> dict:
    run_id = importer.import_file(kind, path, load_mapping("tmall"), actor="ops-1", ad_source=ad_source)
    with session_scope() as session:
        return importer.report(session, run_id)


def export(tmp_path: Path, kind: str, count: int, *, fmt: str = "gbk", **options) -> Path:
    name = f"{kind}-{options.get('ad_source', '')}-{'later' if options.get('later') else 'first'}"
    out = tmp_path / f"{name}.{'xlsx' if fmt == 'xlsx' else 'csv'}"
    write_export(kind, "tmall", out, count=count, fmt=fmt, **options)
    return out


def file_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows read back on their own (csv or openpyxl), as the oracle for what is stored."""
    if path.suffix == ".xlsx":
        sheet = load_workbook(path, read_only=True).worksheets[0]
        rows = [[str(c) if c is not None else "" for c in r] for r in sheet.iter_rows(values_only=True)]
    else:
        with path.open(encoding="gbk", newline="") as file:
            rows = list(csv.reader(file))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def count(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


class TestTrafficImport:
    @pytest.mark.parametrize("fmt", ["gbk", "xlsx"])
    def test_the_shops_days_are_stored_as_the_file_gives_them(self, tmp_path: Path, fmt: str) -> None:
        path = export(tmp_path, "traffic", 10, fmt=fmt)
        report = run("traffic", path)
        assert (report["created"], report["updated"], report["unchanged"], report["rejected"]) == (10, 0, 0, 0)
        with session_scope() as session:
            stored = {row.day: row for row in session.scalars(select(TrafficDay))}
        for row in file_rows(path):
            day = stored[date.fromisoformat(row["统计日期"])]
            assert day.visitors == int(row["访客数"].replace(",", ""))
            assert day.paid_buyers == int(row["支付买家数"])
            assert day.page_views == int(row["浏览量"])
            assert Decimal(day.paid_amount) == Decimal(row["支付金额"])
            assert (day.store, day.item_id) == ("棉言旗舰店", None)

    def test_the_items_days_keep_their_item_and_merchant_code(self, tmp_path: Path) -> None:
        path = export(tmp_path, "traffic_items", 8)
        assert run("traffic", path)["created"] == 8
        with session_scope() as session:
            stored = {(r.day, r.item_id): r for r in session.scalars(select(TrafficDay))}
        for row in file_rows(path):
            item = stored[(date.fromisoformat(row["统计日期"]), row["商品ID"])]
            assert (item.sku, item.visitors, item.paid_buyers) == (
                row["商家编码"],
                int(row["商品访客数"]),
                int(row["支付买家数"]),
            )

    def test_the_same_file_twice_changes_nothing_and_a_corrected_one_updates(self, tmp_path: Path) -> None:
        run("traffic", export(tmp_path, "traffic", 9))
        again = run("traffic", export(tmp_path, "traffic", 9))
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 9)
        later_path = export(tmp_path, "traffic", 9, later=True)
        later = run("traffic", later_path)
        # Days 0, 3 and 6 gained visitors in the later file.
        assert (later["created"], later["updated"], later["unchanged"]) == (0, 3, 6)
        with session_scope() as session:
            stored = {r.day: r.visitors for r in session.scalars(select(TrafficDay))}
        assert stored == {
            date.fromisoformat(r["统计日期"]): int(r["访客数"].replace(",", "")) for r in file_rows(later_path)
        }
        assert count(TrafficDay) == 9
        with session_scope() as session:
            events = session.scalar(select(func.count()).where(AuditEvent.type == "import.finished"))
        assert events == 3

    def test_bad_rows_are_rejected_by_line_and_the_rest_import(self, tmp_path: Path) -> None:
        report = run("traffic", export(tmp_path, "traffic", 12, malformed=3))
        assert (report["created"], report["rejected"]) == (9, 3)
        reasons = sorted(r["reason"] for r in report["rejections"])
        assert any("支付金额" in r and "'12.3.4' is not an amount" in r for r in reasons)
        assert any("统计日期" in r and "'2026-13-45' is not a day" in r for r in reasons)
        assert any("支付买家数" in r and "paying buyers among" in r for r in reasons)
        assert all(r["line"] >= 2 for r in report["rejections"])

    def test_a_file_without_the_visitors_column_is_refused_naming_it(self, tmp_path: Path) -> None:
        path = tmp_path / "traffic.csv"
        path.write_text("统计日期,支付买家数\r\n2026-11-01,3\r\n", encoding="gbk")
        with pytest.raises(ValidationFailed) as refused:
            run("traffic", path)
        assert "访客数" in refused.value.detail
        assert count(TrafficDay) == 0


class TestAdImport:
    @pytest.mark.parametrize(("source", "fmt"), [("ztc", "gbk"), ("zz", "xlsx")])
    def test_each_channels_report_is_stored_with_its_channel(self, tmp_path: Path, source: str, fmt: str) -> None:
        path = export(tmp_path, "ads", 9, fmt=fmt, ad_source=source)
        report = run("ads", path, ad_source=source)
        assert (report["kind"], report["created"], report["rejected"]) == ("ads", 9, 0)
        money = "花费" if source == "ztc" else "消耗"
        sales = "总成交金额" if source == "ztc" else "成交金额"
        with session_scope() as session:
            stored = {(r.day, r.plan): r for r in session.scalars(select(AdDay))}
        for row in file_rows(path):
            day = stored[(date.fromisoformat(row["日期"]), row["计划名称"])]
            assert day.source == source
            assert (day.impressions, day.clicks) == (int(row["展现量"]), int(row["点击量"]))
            assert (Decimal(day.spend), Decimal(day.gmv)) == (Decimal(row[money]), Decimal(row[sales]))
            assert day.creative_id == (row["创意ID"] if source == "ztc" else None)

    def test_the_same_report_under_both_channels_is_two_sets_of_rows(self, tmp_path: Path) -> None:
        path = export(tmp_path, "ads", 6, ad_source="ztc")
        run("ads", path, ad_source="ztc")
        assert run("ads", path, ad_source="ztc")["unchanged"] == 6
        assert run("ads", path, ad_source="zz")["created"] == 6
        assert count(AdDay) == 12

    def test_a_corrected_report_updates_the_rows_whose_gmv_grew(self, tmp_path: Path) -> None:
        run("ads", export(tmp_path, "ads", 9, ad_source="ztc"), ad_source="ztc")
        later = run("ads", export(tmp_path, "ads", 9, ad_source="ztc", later=True), ad_source="ztc")
        assert (later["created"], later["updated"], later["unchanged"]) == (0, 3, 6)

    def test_bad_rows_and_a_repeated_row_are_rejected_naming_their_lines(self, tmp_path: Path) -> None:
        path = export(tmp_path, "ads", 10, ad_source="ztc", malformed=4)
        with path.open("a", encoding="gbk", newline="") as file:
            # Line 12 repeats line 11 (the last, unspoilt row): the same plan, creative and day.
            file.write(path.read_text(encoding="gbk").splitlines()[-1] + "\r\n")
        report = run("ads", path, ad_source="ztc")
        assert (report["created"], report["rejected"]) == (6, 5)
        by_line = {r["line"]: r["reason"] for r in report["rejections"]}
        assert by_line[12].endswith("is also on line 11")
        assert any("点击量" in r and "clicks on" in r for r in by_line.values())
        assert any("计划名称: empty (required)" in r for r in by_line.values())

    def test_an_ad_report_needs_its_channel_and_nothing_is_written_without_it(self, tmp_path: Path) -> None:
        path = export(tmp_path, "ads", 3, ad_source="ztc")
        for source in (None, "wxt"):
            with pytest.raises(ValidationFailed) as refused:
                run("ads", path, ad_source=source)
            assert refused.value.problems[0].field == "source"
        assert count(AdDay) == 0
