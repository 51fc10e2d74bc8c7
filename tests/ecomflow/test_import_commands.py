"""`ecomflow sample-export` then `ecomflow import …` end to end: the report printed, refusals exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecomflow.cli import app
from ecomflow.engine.db.platform_models import ImportRun, PlatformOrder, PlatformReview
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import cases, waves
from tests.factories import make_user

pytestmark = pytest.mark.usefixtures("clean_db")
runner = CliRunner()


@pytest.fixture(autouse=True)
def hand_offs_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What waves/cases do with a change is their engineers' (and tests'); these tests see only what ingest does."""
    monkeypatch.setattr(waves, "order_changed", lambda session, order, *, before, actor: None)
    monkeypatch.setattr(waves, "orders_created", lambda session, orders, *, actor: None)
    monkeypatch.setattr(cases, "refund_changed", lambda session, refund, *, before, actor: None)
    monkeypatch.setattr(cases, "review_changed", lambda session, review, *, before, actor: None)


def count(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_generated_tmall_export_imports_with_a_progress_bar_and_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(name="cs-li", roles=("customer_service",))
    out = tmp_path / "orders.csv"
    made = runner.invoke(app, ["sample-export", "orders", str(out), "--count", "40", "--malformed", "3"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["written"] == [str(out), str(tmp_path / "orders-items.csv")]
    monkeypatch.setattr("ecomflow.command_helpers.PROGRESS_FROM", 3)  # "long" from 3 rows
    args = ["import", "orders", str(out), "--lines", str(tmp_path / "orders-items.csv"), "--platform", "tmall"]
    result = runner.invoke(app, [*args, "--as", "cs-li"])
    assert result.exit_code == 0, result.output
    assert "importing" in result.output  # the bar's label
    assert "37 created, 0 updated, 0 unchanged" in result.output
    assert "0 process start(s) still queued" in result.output
    assert result.output.count("orders.csv:") == 3  # each bad order row with its line
    assert count(PlatformOrder) == 37
    again = runner.invoke(app, [*args, "--as", "cs-li"])
    assert "0 created, 0 updated, 37 unchanged" in again.output


def test_a_jd_export_in_xlsx_imports(tmp_path: Path) -> None:
    make_user(name="mgr", roles=("operations",))
    out = tmp_path / "jd.xlsx"
    runner.invoke(app, ["sample-export", "orders", str(out), "--platform", "jd", "--count", "6", "--format", "xlsx"])
    result = runner.invoke(app, ["import", "orders", str(out), "--platform", "jd", "--as", "mgr"])
    assert result.exit_code == 0, result.output
    assert "6 created" in result.output


def test_a_refused_file_exits_1_with_the_reason_and_writes_nothing(tmp_path: Path) -> None:
    make_user(name="cs-li", roles=("customer_service",))
    out = tmp_path / "reviews.csv"
    runner.invoke(app, ["sample-export", "reviews", str(out), "--count", "5"])
    result = runner.invoke(app, ["import", "refunds", str(out), "--platform", "tmall", "--as", "cs-li"])
    assert result.exit_code == 1
    assert "lacks the column(s) 退款编号" in result.output and "nothing imported" in result.output
    assert count(ImportRun) == 0


def test_a_team_mapping_file_is_used_and_a_bad_one_is_named_by_its_key(tmp_path: Path) -> None:
    make_user(name="cs-li", roles=("customer_service",))
    out = tmp_path / "reviews.csv"
    runner.invoke(app, ["sample-export", "reviews", str(out), "--count", "4"])
    # The team's export names the rating column 评分 instead of 评价结果.
    text = out.read_bytes().decode("gbk").replace("评价结果", "评分", 1)
    out.write_bytes(text.encode("gbk"))
    shipped = Path(__file__).parents[2] / "src" / "engine" / "intake" / "mappings" / "tmall.yaml"
    mapping = tmp_path / "tmall.yaml"
    mapping.write_text(
        shipped.read_text(encoding="utf-8").replace("rating: [评价结果]", "rating: [评分]"), encoding="utf-8"
    )
    args = ["import", "reviews", str(out), "--platform", "tmall", "--as", "cs-li"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "评价结果" in refused.output
    result = runner.invoke(app, [*args, "--mapping", str(mapping)])
    assert result.exit_code == 0, result.output
    assert count(PlatformReview) == 4
    mapping.write_text(shipped.read_text(encoding="utf-8").replace("中评: 3", "中评: 7"), encoding="utf-8")
    bad = runner.invoke(app, [*args, "--mapping", str(mapping)])
    assert bad.exit_code == 1
    assert "reviews.ratings.中评: 7 is not one of 1, 2, 3, 4, 5" in bad.output


def test_a_warehouse_user_may_not_import(tmp_path: Path) -> None:
    make_user(name="wh", roles=("warehouse",))
    out = tmp_path / "reviews.csv"
    runner.invoke(app, ["sample-export", "reviews", str(out), "--count", "2"])
    result = runner.invoke(app, ["import", "reviews", str(out), "--platform", "tmall", "--as", "wh"])
    assert result.exit_code == 2 and "import rule" in result.output


def test_generated_traffic_and_ad_reports_import_from_the_command_line(tmp_path: Path) -> None:
    make_user(name="mgr", roles=("operations",))
    traffic, ads = tmp_path / "traffic.csv", tmp_path / "zz.xlsx"
    made = runner.invoke(app, ["sample-export", "traffic", str(traffic), "--count", "5", "--malformed", "1"])
    assert made.exit_code == 0, made.output
    made = runner.invoke(app, ["sample-export", "ads", str(ads), "--source", "zz", "--count", "4", "--format", "xlsx"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["import", "traffic", str(traffic), "--platform", "tmall", "--as", "mgr"])
    assert result.exit_code == 0, result.output
    assert "(traffic, tmall, file:traffic.csv): 4 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert result.output.count("traffic.csv:") == 1
    args = ["import", "ads", str(ads), "--platform", "tmall", "--as", "mgr"]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2 and "--source" in missing.output
    result = runner.invoke(app, [*args, "--source", "zz"])
    assert result.exit_code == 0, result.output
    assert "4 created" in result.output
