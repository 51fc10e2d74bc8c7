"""POST /imports over real HTTP: a multipart upload of an export, its report, and who may import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.platform_models import ImportRun, PlatformOrder, PlatformOrderLine, PlatformRefund
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.intake import cases, waves
from ecomflow.sample_exports import items_path, write_export
from tests.api.conftest import Caller, assert_error, field_names


@pytest.fixture(autouse=True)
def hand_offs_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What waves/cases do with a change is their engineers' (and tests'); these tests see only what ingest does."""
    monkeypatch.setattr(waves, "order_changed", lambda session, order, *, before, actor: None)
    monkeypatch.setattr(waves, "orders_created", lambda session, orders, *, actor: None)
    monkeypatch.setattr(cases, "refund_changed", lambda session, refund, *, before, actor: None)
    monkeypatch.setattr(cases, "review_changed", lambda session, review, *, before, actor: None)


def tmall_orders(tmp_path: Path, count: int = 12, malformed: int = 0) -> tuple[Path, Path]:
    out = tmp_path / "订单报表.csv"
    write_export("orders", "tmall", out, count=count, malformed=malformed)
    return out, items_path(out)


def upload(caller: Caller, kind: str, platform: str, file: Path, lines: Path | None = None):
    files = {"file": (file.name, file.read_bytes(), "text/csv")}
    if lines is not None:
        files["lines_file"] = (lines.name, lines.read_bytes(), "text/csv")
    return caller.post("/imports", data={"kind": kind, "platform": platform}, files=files)


def count(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_customer_service_imports_orders_with_their_lines_and_reads_the_report(
    login: Callable[..., Caller], tmp_path: Path
) -> None:
    caller = login("customer_service")
    orders, lines = tmall_orders(tmp_path, malformed=2)
    response = upload(caller, "orders", "tmall", orders, lines)
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (10, 0, 0)
    assert report["source"] == "file:订单报表.csv" and report["actor"] == caller.name
    order_rows = [r for r in report["rejections"] if r["file"] == "订单报表.csv"]
    assert len(order_rows) == 2 and all(r["line"] >= 2 and "column" in r["reason"] for r in order_rows)
    assert report["rejected"] == len(report["rejections"])
    assert report["queued"] == 0
    assert count(PlatformOrder) == 10 and count(PlatformOrderLine) > 10
    again = caller.get(f"/imports/{report['id']}")
    assert again.status_code == 200 and again.json()["created"] == 10
    listed = caller.get("/imports")
    assert [r["id"] for r in listed.json()] == [report["id"]]


def test_a_manager_imports_a_refund_export_twice_and_the_second_changes_nothing(
    login: Callable[..., Caller], tmp_path: Path
) -> None:
    caller = login("operations")
    out = tmp_path / "refunds.xlsx"
    write_export("refunds", "tmall", out, count=6, fmt="xlsx")
    first = upload(caller, "refunds", "tmall", out).json()
    second = upload(caller, "refunds", "tmall", out).json()
    assert first["created"] == 6
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 6)
    assert count(PlatformRefund) == 6


def test_a_warehouse_user_may_not_import(login: Callable[..., Caller], tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path)
    response = upload(login("warehouse"), "orders", "tmall", orders, lines)
    body = assert_error(response, 403, "Forbidden")
    assert "import rule" in body["detail"]
    assert count(ImportRun) == 0


def test_a_file_with_the_wrong_columns_is_a_422_naming_them_and_nothing_is_written(
    login: Callable[..., Caller], tmp_path: Path
) -> None:
    out = tmp_path / "reviews.csv"
    write_export("reviews", "tmall", out, count=4)
    response = upload(login("customer_service"), "refunds", "tmall", out)
    body = assert_error(response, 422, "ValidationFailed")
    assert body["fields"] == [{"field": "file", "rule": "columns", "message": body["fields"][0]["message"]}]
    assert "退款编号" in body["detail"]
    assert count(ImportRun) == count(PlatformRefund) == 0


def test_a_missing_kind_and_file_are_named(login: Callable[..., Caller]) -> None:
    caller = login("customer_service")
    response = caller.post("/imports", data={"platform": "tmall"}, files={"other": ("x.csv", b"a,b\n", "text/csv")})
    body = assert_error(response, 422, "ValidationFailed")
    assert field_names(body) == ["kind", "file"]


def test_the_openapi_describes_the_upload(login: Callable[..., Caller]) -> None:
    spec = login("customer_service").get("/openapi.json").json()
    operation = spec["paths"]["/imports"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["kind", "platform", "file"]
    assert set(schema["properties"]) == {"kind", "platform", "source", "file", "lines_file"}
    assert schema["properties"]["source"]["enum"] == ["ztc", "zz"]
    assert {"201", "403", "422"} <= set(operation["responses"])
