"""Importing generated exports: each encoding and format, rejections by line, refusals with nothing written."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, OutboxMessage
from ecomflow.engine.db.platform_models import (
    ImportRun,
    PlatformOrder,
    PlatformOrderEvent,
    PlatformOrderLine,
    PlatformRefund,
    PlatformReview,
)
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.events.outbox import START_RUN
from ecomflow.engine.intake import cases, importer, ingest, waves
from ecomflow.engine.intake.mapping import load_mapping
from ecomflow.sample_exports import items_path, write_export
from tests.conftest import BACKEND

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture(autouse=True)
def hand_offs_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What waves/cases do with a change is their engineers' (and tests'); these tests see only what ingest does."""
    monkeypatch.setattr(waves, "order_changed", lambda session, order, *, before, actor: None)
    monkeypatch.setattr(waves, "orders_created", lambda session, orders, *, actor: None)
    monkeypatch.setattr(cases, "refund_changed", lambda session, refund, *, before, actor: None)
    monkeypatch.setattr(cases, "review_changed", lambda session, review, *, before, actor: None)


def run(kind: str, path: Path, platform: str = "tmall", lines: Path | None = None) -> dict:
    mapping = load_mapping(platform)
    run_id = importer.import_file(kind, path, mapping, actor="cs-1", lines_path=lines)
    with session_scope() as session:
        return importer.report(session, run_id)


def tmall_orders(tmp_path: Path, count: int = 30, **options) -> tuple[Path, Path]:
    suffix = ".xlsx" if options.get("fmt") == "xlsx" else ".csv"
    out = tmp_path / f"orders-{options.get('seed', 1)}{'-later' if options.get('later') else ''}{suffix}"
    write_export("orders", "tmall", out, count=count, **options)
    return out, items_path(out)


def stored(model) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("fmt", ["gbk", "utf8-bom", "xlsx"])
def test_a_tmall_order_export_with_its_lines_imports_in_each_format(tmp_path: Path, fmt: str) -> None:
    orders, lines = tmall_orders(tmp_path, fmt=fmt)
    report = run("orders", orders, lines=lines)
    assert (report["created"], report["updated"], report["unchanged"], report["rejected"]) == (30, 0, 0, 0)
    assert report["source"] == f"file:{orders.name}"
    with session_scope() as session:
        first = session.scalar(select(PlatformOrder).where(PlatformOrder.order_no == "3801234510000000"))
        # The ="…" Excel guard is gone, the time is Shanghai's, buyer fields stay masked.
        assert first is not None
        assert first.ordered_at.astimezone(UTC).hour == 1  # 09:00 in Shanghai
        assert "**" in first.buyer_nick and "****" in first.receiver_phone
        assert isinstance(first.paid_amount, Decimal)
        counted = session.scalar(select(func.count()).where(PlatformOrderLine.order_id == first.id))
    assert counted == 1
    # Orders 0..29 have 1, 2, 3 lines in turn.
    assert stored(PlatformOrderLine) == 60


def test_statuses_map_to_the_canon_also_with_an_ascii_comma(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path)
    run("orders", orders, lines=lines)
    with session_scope() as session:
        pairs = set(session.execute(select(PlatformOrder.platform_status, PlatformOrder.status)).all())
    assert ("买家已付款,等待卖家发货", "paid") in pairs
    assert ("买家已付款，等待卖家发货", "paid") in pairs
    assert {status for _, status in pairs} == {"awaiting_payment", "paid", "shipped", "completed", "cancelled"}


def test_bad_rows_are_rejected_with_their_line_and_the_rest_import(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path, malformed=4)
    report = run("orders", orders, lines=lines)
    assert report["created"] == 26
    order_rejections = [r for r in report["rejections"] if r["file"] == orders.name]
    assert len(order_rejections) == 4
    # The row without an order number leaves its 1–3 lines without an order; other bad orders take theirs along.
    orphans = [r for r in report["rejections"] if r["file"] == lines.name]
    assert 1 <= len(orphans) <= 3 and all("is not in the order report" in r["reason"] for r in orphans)
    assert report["rejected"] == 4 + len(orphans)
    texts = " | ".join(r["reason"] for r in order_rejections)
    assert "column 买家实际支付金额: '12.3.4' is not an amount" in texts
    assert "column 订单创建时间: '2026-13-45 25:61:00' is not a time" in texts
    assert "column 订单状态: unknown wording '发货中'" in texts
    assert "column 订单编号: empty (required)" in texts
    assert all(r["line"] >= 2 for r in report["rejections"])
    assert {r["file"] for r in report["rejections"]} == {orders.name, lines.name}
    assert stored(PlatformOrder) == 26


def test_the_same_file_twice_changes_nothing_and_adds_no_events(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path)
    run("orders", orders, lines=lines)
    events = stored(PlatformOrderEvent)
    second = run("orders", orders, lines=lines)
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 30)
    assert stored(PlatformOrderEvent) == events == 30
    with session_scope() as session:
        finished = session.scalars(select(AuditEvent).where(AuditEvent.type == "import.finished")).all()
    assert [e.data["unchanged"] for e in finished] == [0, 30]


def test_a_later_export_updates_the_moved_orders_and_hands_on_their_before_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, lines = tmall_orders(tmp_path)
    run("orders", orders, lines=lines)
    moved: list[tuple[str, str | None, str]] = []
    monkeypatch.setattr(
        waves, "order_changed", lambda s, order, *, before, actor: moved.append((order.order_no, before, order.status))
    )
    later, later_lines = tmall_orders(tmp_path, later=True)
    report = run("orders", later, lines=later_lines)
    # 3 of the 5 statuses move on (unpaid → closed, paid → shipped, shipped → completed).
    assert report["updated"] == 18 and report["unchanged"] == 12 and report["created"] == 0
    assert len(moved) == 18
    with session_scope() as session:
        changes = session.execute(
            select(PlatformOrder.order_no, PlatformOrderEvent.data)
            .join(PlatformOrder, PlatformOrder.id == PlatformOrderEvent.order_id)
            .where(PlatformOrderEvent.type == "order.status_changed")
        ).all()
    by_order = {order_no: (data["from"], data["to"]) for order_no, data in changes}
    assert {(no, before, after) for no, before, after in moved} == {(no, f, t) for no, (f, t) in by_order.items()}
    assert {(f, t) for f, t in by_order.values()} == {
        ("awaiting_payment", "cancelled"),
        ("paid", "shipped"),
        ("shipped", "completed"),
    }


def test_jd_rows_are_grouped_into_orders_with_their_lines(tmp_path: Path) -> None:
    out = tmp_path / "jd.csv"
    write_export("orders", "jd", out, count=10)
    report = run("orders", out, platform="jd")
    assert report["created"] == 10 and report["rejected"] == 0
    # Orders alternate 1 and 2 lines.
    assert stored(PlatformOrderLine) == 15
    with session_scope() as session:
        order = session.scalar(select(PlatformOrder).where(PlatformOrder.order_no == "280010000001"))
        prices = session.scalars(select(PlatformOrderLine.price).where(PlatformOrderLine.order_id == order.id)).all()
    assert len(prices) == 2 and order.paid_amount == sum(prices)


def test_a_jd_order_with_a_bad_line_is_rejected_whole(tmp_path: Path) -> None:
    out = tmp_path / "jd.csv"
    write_export("orders", "jd", out, count=10)
    rows = out.read_bytes().decode("gbk").split("\r\n")
    # Order 280010000001 has two rows (3 and 4); spoil the quantity of its second.
    cells = rows[3].split(",")
    assert cells[0] == "280010000001"
    cells[3] = "两"
    rows[3] = ",".join(cells)
    out.write_bytes("\r\n".join(rows).encode("gbk"))
    report = run("orders", out, platform="jd")
    assert report["created"] == 9
    assert [(r["line"], r["reason"]) for r in report["rejections"]] == [
        (4, "column 订购数量: '两' is not a whole number of 1 or more"),
        (3, "order 280010000001: its line on jd.csv line 4 was rejected"),
    ]


def test_a_repeated_refund_number_is_rejected_naming_the_first_line(tmp_path: Path) -> None:
    out = tmp_path / "refunds.csv"
    write_export("refunds", "tmall", out, count=4)
    rows = out.read_bytes().split(b"\r\n")
    out.write_bytes(b"\r\n".join([*rows[:4], rows[2], *rows[4:]]))
    report = run("refunds", out)
    assert report["created"] == 4
    assert [(r["line"], r["reason"].split(" is also")[1]) for r in report["rejections"]] == [(5, " on line 3")]


def test_refunds_import_with_each_kind_and_status(tmp_path: Path) -> None:
    out = tmp_path / "refunds.csv"
    write_export("refunds", "tmall", out, count=18, fmt="utf8-bom", malformed=2)
    report = run("refunds", out)
    assert report["created"] == 16 and report["rejected"] == 2
    with session_scope() as session:
        refunds = session.scalars(select(PlatformRefund)).all()
    assert {r.kind for r in refunds} == {"refund_only", "return_refund", "exchange"}
    assert {r.status for r in refunds} == {
        "requested",
        "awaiting_return",
        "returned",
        "refunded",
        "rejected",
        "cancelled",
    }
    returned = [r for r in refunds if r.status == "returned"]
    assert returned and all(r.return_carrier == "顺丰速运" and r.return_tracking_no.startswith("SF") for r in returned)
    # "￥99.00" reads as 99.00.
    assert all(isinstance(r.amount, Decimal) and r.amount > 0 for r in refunds)


def test_reviews_import_their_label_as_a_rating(tmp_path: Path) -> None:
    out = tmp_path / "reviews.xlsx"
    write_export("reviews", "tmall", out, count=8, fmt="xlsx")
    assert run("reviews", out)["created"] == 8
    with session_scope() as session:
        pairs = set(session.execute(select(PlatformReview.rating_label, PlatformReview.rating)).all())
    assert pairs == {("好评", 5), ("中评", 3), ("差评", 1)}


def assert_refused(kind: str, path: Path, rule: str, words: str, platform: str = "tmall", lines: Path | None = None):
    with pytest.raises(ValidationFailed) as refused:
        run(kind, path, platform=platform, lines=lines)
    assert [p.rule for p in refused.value.problems] == [rule]
    assert words in refused.value.detail
    assert stored(PlatformOrder) == stored(PlatformRefund) == stored(ImportRun) == 0
    return refused.value


def test_a_file_with_the_wrong_columns_is_refused_naming_them(tmp_path: Path) -> None:
    out = tmp_path / "refunds.csv"
    write_export("refunds", "tmall", out, count=5)
    # A refund report given as orders: 订单状态, 订单创建时间 are missing.
    refused = assert_refused("orders", out, "columns", "lacks the column(s) 订单状态, 订单创建时间")
    assert "is this the right file and --platform?" in refused.detail


def test_a_file_cut_inside_a_quoted_field_is_refused(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path, count=10)
    data = orders.read_bytes()
    orders.write_bytes(data[: data.rindex(b'"=""') + 6])
    assert_refused("orders", orders, "truncated", "ends inside a quoted field", lines=lines)


def test_a_file_with_a_short_last_row_is_refused(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path, count=10)
    data = orders.read_bytes().rstrip(b"\r\n")
    orders.write_bytes(data[: data.rindex(b",", 0, len(data) - 200)])
    assert_refused("orders", orders, "truncated", "line 11: the last row has", lines=lines)


def test_bytes_in_neither_encoding_are_refused_naming_the_line(tmp_path: Path) -> None:
    orders, lines = tmall_orders(tmp_path, count=10)
    rows = orders.read_bytes().split(b"\r\n")
    rows[6] = rows[6] + b"\xff\xff"
    orders.write_bytes(b"\r\n".join(rows))
    assert_refused("orders", orders, "encoding", "line 7: bytes that are not GBK/GB18030 (nor UTF-8)", lines=lines)


def test_a_broken_xlsx_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "reviews.xlsx"
    write_export("reviews", "tmall", out, count=5, fmt="xlsx")
    out.write_bytes(out.read_bytes()[:300])
    assert_refused("reviews", out, "xlsx", "not a readable XLSX workbook")
    assert not zipfile.is_zipfile(out)


def test_a_workbook_under_a_csv_name_is_refused_saying_so(tmp_path: Path) -> None:
    out = tmp_path / "reviews.xlsx"
    write_export("reviews", "tmall", out, count=3, fmt="xlsx")
    misnamed = out.rename(tmp_path / "reviews.csv")
    assert_refused("reviews", misnamed, "format", "this is an XLSX workbook (a zip), not a CSV")


def test_the_report_counts_the_process_starts_still_queued(tmp_path: Path) -> None:
    out = tmp_path / "reviews.csv"
    write_export("reviews", "tmall", out, count=3)
    assert run("reviews", out)["queued"] == 0
    with session_scope() as session:
        session.add_all([OutboxMessage(kind=START_RUN, payload={}) for _ in range(3)])
        session.add(OutboxMessage(kind=START_RUN, payload={}, delivered_at=datetime.now(UTC)))
        session.add(OutboxMessage(kind="resume_run", payload={}))
    shutil.copy(out, tmp_path / "again.csv")
    assert run("reviews", tmp_path / "again.csv")["queued"] == 3


@pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL locks rows: no single write lock to wait for")
def test_a_writer_waiting_on_sqlite_gets_in_between_an_imports_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    # Batches of 5 that each hold the write lock 0.4 s; a writer with a 1 s busy timeout starts meanwhile.
    monkeypatch.setattr(ingest, "BATCH", 5)
    writing, holding = threading.Event(), 0.4
    real_apply = ingest.apply

    def slow_apply(*args, **kwargs):
        real_apply(*args, **kwargs)
        writing.set()
        time.sleep(holding)

    monkeypatch.setattr(ingest, "apply", slow_apply)
    outcome: dict[str, object] = {}

    def other_writer() -> None:
        writing.wait(10)
        connection = sqlite3.connect(database_url.split("///", 1)[-1], timeout=1.0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE import_runs SET actor = actor WHERE 1 = 0")
            connection.execute("COMMIT")
            outcome["in_at"] = time.monotonic()
        except sqlite3.OperationalError as exc:
            outcome["error"] = str(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    orders, lines = tmall_orders(tmp_path, count=40)
    run("orders", orders, lines=lines)
    finished = time.monotonic()
    thread.join()
    assert outcome.get("error") is None
    assert outcome["in_at"] < finished - holding  # it got in between batches, not after the import
