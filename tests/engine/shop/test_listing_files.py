"""The bulk-upload files of a published listing, read back as the platforms' tools read them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from ecomflow.engine.db.models import AttachmentReference, AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.generated import generated_files
from ecomflow.engine.files.storage import blob_key, get_store
from ecomflow.engine.shop.listing_exports import listing_file_of, write_listing_files
from ecomflow.engine.shop.listing_files import (
    JD_COLUMNS,
    TAOBAO_FIELDS,
    TAOBAO_TITLES,
    ListedSku,
    ListingFile,
    jd_xlsx,
    taobao_csv,
)
from tests.factories import make_instance

LISTING = ListingFile(
    code="TEE-2026",
    title="纯棉短袖T恤 男女同款, 夏季",
    category="50000436",
    shipping_template="包邮模板",
    go_live_at="2026-12-05 20:00:00",
    skus=[
        ListedSku(sku="TEE-RED-M", spec="红色/M", price=Decimal("89.00"), stock=30),
        ListedSku(sku="TEE-RED-L", spec="红色/L", price=Decimal("99.90"), stock=12),
    ],
    image_urls=["https://ecomflow.example/attachments/a1", "https://ecomflow.example/attachments/a2"],
)


def read_taobao(data: bytes) -> list[list[str]]:
    """Read the file as 淘宝助理 does: UTF-16 with its BOM, tab-separated."""
    assert data[:2] == b"\xff\xfe"  # the little-endian byte-order mark
    return list(csv.reader(io.StringIO(data.decode("utf-16"), newline=""), delimiter="\t"))


class TestTaobaoCsv:
    def test_the_three_header_lines_are_the_tools_own(self) -> None:
        lines = read_taobao(taobao_csv(LISTING))
        assert lines[0] == ["version 1.00"]
        assert lines[1][:8] == ["title", "cid", "seller_cids", "stuff_status", "location_state", "location_city",
                                "item_type", "price"]  # fmt: skip
        assert lines[1][-1] == "o2o_bind_service" and len(lines[1]) == 63
        assert lines[2][:3] == ["宝贝名称", "宝贝类目", "店铺类目"] and lines[2][33] == "商家编码"
        assert len(TAOBAO_FIELDS) == len(TAOBAO_TITLES)

    def test_the_listing_is_one_row_under_its_field_names(self) -> None:
        _, fields, _, row = read_taobao(taobao_csv(LISTING))
        item = dict(zip(fields, row, strict=True))
        assert item["title"] == "纯棉短袖T恤 男女同款, 夏季"  # the comma survives: tab is the separator
        assert (item["cid"], item["stuff_status"], item["postage_id"]) == ("50000436", "1", "包邮模板")
        assert (item["price"], item["num"], item["outer_id"]) == ("89.00", "42", "TEE-2026")
        assert item["skuProps"] == "89.00:30:TEE-RED-M:;99.90:12:TEE-RED-L:;"
        assert item["picture"] == (
            ":1:0:|https://ecomflow.example/attachments/a1;:1:1:|https://ecomflow.example/attachments/a2;"
        )
        assert item["list_time"] == "2026-12-05 20:00:00"
        assert item["num_id"] == ""  # a new 宝贝: the platform gives it its id

    def test_lines_end_as_the_windows_tool_writes_them(self) -> None:
        text = taobao_csv(LISTING).decode("utf-16")
        assert text.count("\r\n") == 4 and "\n" not in text.replace("\r\n", "")


class TestJdXlsx:
    def test_titles_then_api_fields_then_one_row_per_sku(self) -> None:
        sheet = load_workbook(io.BytesIO(jd_xlsx(LISTING))).active
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        assert sheet.title == "商品"
        assert rows[0] == [
            "商品名称",
            "类目",
            "商家商品编码",
            "运费模板",
            "商家SKU编码",
            "销售属性",
            "京东价",
            "库存",
            "主图",
        ]
        assert rows[1] == [name for _, name in JD_COLUMNS] and "jdPrice" in rows[1]
        assert rows[2] == ["纯棉短袖T恤 男女同款, 夏季", "50000436", "TEE-2026", "包邮模板", "TEE-RED-M", "红色/M",
                           "89.00", 30, "https://ecomflow.example/attachments/a1"]  # fmt: skip
        assert [row[4] for row in rows[2:]] == ["TEE-RED-M", "TEE-RED-L"] and rows[3][6] == "99.90"


LISTING_DATA = {
    "title": "纯棉短袖T恤",
    "category": "T恤",
    "shipping_template": "包邮",
    "go_live_at": "2026-12-05T12:00:00+00:00",
    "skus": [{"sku": "TEE-RED-M", "spec": "红色/M", "stock": 5}, {"sku": "TEE-RED-L", "stock": 0}],
    "main_images": ["img-1"],
}


def test_the_listing_data_becomes_the_file_with_local_go_live_time_and_published_prices() -> None:
    export = listing_file_of(
        LISTING_DATA, code="TEE", prices={"TEE-RED-M": 89, "TEE-RED-L": "99.9"}, timezone="Asia/Shanghai",
        public_url="http://shop.example",
    )  # fmt: skip
    assert export.go_live_at == "2026-12-05 20:00:00"
    assert [(s.sku, s.spec, s.price, s.stock) for s in export.skus] == [
        ("TEE-RED-M", "红色/M", Decimal("89.00"), 5),
        ("TEE-RED-L", "", Decimal("99.90"), 0),
    ]
    assert export.image_urls == ["http://shop.example/attachments/img-1"]
    naive = {**LISTING_DATA, "go_live_at": "2026-12-05T20:00:00"}
    assert listing_file_of(naive, code="T", prices={"TEE-RED-M": 1, "TEE-RED-L": 1}, timezone="Asia/Shanghai",
                           public_url="").go_live_at == "2026-12-05 20:00:00"  # fmt: skip


@pytest.mark.usefixtures("clean_db")
def test_the_files_are_stored_once_on_the_instance_and_listed_for_it() -> None:
    instance_id = make_instance()
    arguments = {"listing": LISTING_DATA, "code": "TEE", "prices": {"TEE-RED-M": 89, "TEE-RED-L": 99}}
    with session_scope() as session:
        first = write_listing_files(session, instance_id=instance_id, timezone="Asia/Shanghai", **arguments)
    with session_scope() as session:
        again = write_listing_files(session, instance_id=instance_id, timezone="Asia/Shanghai", **arguments)
        files = generated_files(session, instance_id)
        references = session.scalars(select(AttachmentReference.field)).all()
        events = session.scalars(select(AuditEvent.type).where(AuditEvent.type == "attachment.generated")).all()
    assert again == first and len(first) == 2
    assert [(name, a.filename, a.content_type) for name, a in files] == [
        ("taobao_csv", "TEE-taobao.csv", "text/csv"),
        ("jd_xlsx", "TEE-jd.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ]
    assert sorted(references) == ["generated.jd_xlsx", "generated.taobao_csv"] and len(events) == 2
    stored = b"".join(get_store().read(blob_key(files[0][1].sha256)))
    assert read_taobao(stored)[3][0] == "纯棉短袖T恤"
