"""POST /imports of traffic (生意参谋) and ad (直通车/钻展) reports over real HTTP: the report, and the channel rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from ecomflow.engine.db.platform_models import AdDay, TrafficDay
from ecomflow.engine.db.sessions import session_scope
from ecomflow.sample_exports import write_export
from tests.api.conftest import Caller, assert_error, field_names


def upload(caller: Caller, kind: str, file: Path, **fields: str):
    files = {"file": (file.name, file.read_bytes(), "application/octet-stream")}
    return caller.post("/imports", data={"kind": kind, "platform": "tmall", **fields}, files=files)


def count(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_traffic_export_uploads_and_reports_its_rejected_lines(login: Callable[..., Caller], tmp_path: Path) -> None:
    caller = login("operations")
    path = tmp_path / "生意参谋.xlsx"
    write_export("traffic", "tmall", path, count=7, fmt="xlsx", malformed=2)
    response = upload(caller, "traffic", path)
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["kind"], report["created"], report["rejected"]) == ("traffic", 5, 2)
    assert all(r["file"] == "生意参谋.xlsx" and r["line"] >= 2 for r in report["rejections"])
    assert count(TrafficDay) == 5
    again = upload(caller, "traffic", path).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 5)


def test_an_ad_report_names_its_channel_or_is_refused_with_nothing_written(
    login: Callable[..., Caller], tmp_path: Path
) -> None:
    caller = login("customer_service")
    path = tmp_path / "直通车.csv"
    write_export("ads", "tmall", path, count=6, ad_source="ztc")
    body = assert_error(upload(caller, "ads", path), 422, "ValidationFailed")
    assert field_names(body) == ["source"]
    body = assert_error(upload(caller, "ads", path, source="wxt"), 422, "ValidationFailed")
    assert field_names(body) == ["source"]
    assert count(AdDay) == 0
    response = upload(caller, "ads", path, source="ztc")
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 6
    with session_scope() as session:
        assert set(session.scalars(select(AdDay.source))) == {"ztc"}


def test_a_channel_on_a_traffic_import_is_refused(login: Callable[..., Caller], tmp_path: Path) -> None:
    path = tmp_path / "traffic.csv"
    write_export("traffic", "tmall", path, count=2)
    body = assert_error(upload(login("operations"), "traffic", path, source="ztc"), 422, "ValidationFailed")
    assert field_names(body) == ["source"]
    assert count(TrafficDay) == 0
