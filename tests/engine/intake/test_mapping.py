"""Mapping files (the shipped ones, a team's copy, bad ones named by key) and the cells' export quirks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.intake.mapping import load_mapping, parse_mapping
from ecomflow.engine.intake.rows import RowReader, RowRejected, clean, order_of

pytestmark = pytest.mark.db_independent


def shipped(platform: str) -> dict:
    return yaml.safe_load((Path(__file__).parents[3] / "src/engine/intake/mappings" / f"{platform}.yaml").read_text())


@pytest.mark.parametrize("platform", ["tmall", "jd"])
def test_the_shipped_mappings_load(platform: str) -> None:
    mapping = load_mapping(platform)
    assert mapping.platform == platform and "orders" in mapping.sections
    assert str(mapping.timezone) == "Asia/Shanghai"


def test_jd_refunds_are_not_mapped_and_say_so() -> None:
    with pytest.raises(ValidationFailed) as refused:
        load_mapping("jd").section("refunds")
    assert "jd refunds exports are not mapped" in refused.value.problems[0].message


def test_a_teams_copy_in_the_data_dir_replaces_the_shipped_one(tmp_path: Path) -> None:
    data = shipped("tmall")
    data["orders"]["columns"]["order_no"] = ["订单号"]
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "tmall.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    mapping = load_mapping("tmall", data_dir=tmp_path)
    assert mapping.sections["orders"].columns["order_no"] == ("订单号",)
    assert mapping.source.endswith("mappings/tmall.yaml")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["orders"]["columns"].update({"colour": ["颜色"]}), "orders.columns.colour"),
        (lambda d: d["orders"]["statuses"].update({"发货中": "sent"}), "orders.statuses.发货中"),
        (lambda d: d["refunds"].update({"required": ["refund_no", "cause"]}), "refunds.required"),
        (lambda d: d.update({"time_formats": "yyyy-MM-dd"}), "time_formats"),
        (lambda d: d.update({"timezone": "Mars/Olympus"}), "timezone"),
        (lambda d: d.update({"order": {}}), "order"),
        (lambda d: d.pop("orders"), "orders"),
    ],
)
def test_a_bad_mapping_is_refused_naming_its_key(change, key: str) -> None:
    data = shipped("tmall")
    change(data)
    with pytest.raises(ValidationFailed) as refused:
        parse_mapping(data, source="team.yaml", platform="tmall")
    assert refused.value.problems[0].field == key
    assert refused.value.detail.startswith(f"mapping team.yaml: {key}:")


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ('="3801234567890"', "3801234567890"),
        ("轻羽绒马甲\t", "轻羽绒马甲"),
        ("null", ""),
        (" '138****1234", "138****1234"),
    ],
)
def test_cells_lose_the_exports_quirks(cell: str, value: str) -> None:
    assert clean(cell) == value


def test_amounts_with_a_yuan_sign_and_thousands_commas_are_decimal() -> None:
    mapping = load_mapping("tmall")
    header = ["订单编号", "订单状态", "买家实际支付金额", "订单创建时间", "总金额"]
    reader = RowReader(header, mapping.section("orders"), mapping, name="o.csv")
    row = ['="1"', "交易成功", "￥1,299.50", "2026-11-01 09:00", "1299.5"]
    order = order_of(reader, reader.values(row), "tmall")
    assert order.paid_amount == Decimal("1299.50") and order.total_amount == Decimal("1299.50")
    # Shanghai's 09:00 is 01:00 UTC.
    assert order.ordered_at == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(RowRejected, match="column 买家实际支付金额: '-5' is not an amount of 0 or more"):
        order_of(reader, reader.values([*row[:2], "-5", *row[3:]]), "tmall")
