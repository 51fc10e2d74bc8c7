"""ingest.apply: upserts on the platform's ids, counts created/updated/unchanged, hands on the new and the moved."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent
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
from ecomflow.engine.intake import cases, ingest, waves
from ecomflow.engine.intake.records import OrderLineRecord, OrderRecord, RefundRecord, ReviewRecord

pytestmark = pytest.mark.usefixtures("clean_db")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def order(number: int, status: str = "paid", **extra: object) -> OrderRecord:
    values = {
        "platform": "tmall",
        "order_no": f"38012345678{number:05d}",
        "status": status,
        "platform_status": {"paid": "买家已付款，等待卖家发货", "shipped": "卖家已发货，等待买家确认"}.get(
            status, status
        ),
        "paid_amount": Decimal("199.00"),
        "ordered_at": datetime(2026, 12, 1, 10, 30, tzinfo=SHANGHAI),
        "buyer_nick": "t**8",
        "receiver_phone": "138****1234",
        "lines": (OrderLineRecord(sku="TEE-WHITE-M", title="纯棉T恤", quantity=1, price=Decimal("199")),),
    }
    values.update(extra)
    return OrderRecord(**values)  # type: ignore[arg-type]


def refund(number: int, status: str = "requested") -> RefundRecord:
    return RefundRecord(
        platform="tmall",
        refund_no=f"R{number}",
        order_no=f"38012345678{number:05d}",
        kind="return_refund",
        status=status,
        platform_status="买家已经申请退款，等待卖家同意",
        amount=Decimal("99.5"),
        requested_at=datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI),
    )


def review(number: int, rating: int = 5) -> ReviewRecord:
    return ReviewRecord(
        platform="tmall",
        review_id=f"V{number}",
        order_no=f"38012345678{number:05d}",
        rating=rating,
        reviewed_at=datetime(2026, 12, 3, 20, 0, tzinfo=SHANGHAI),
        content="不错",
    )


def run_import(kind: str, records: list) -> dict[str, int]:
    with session_scope() as session:
        run = ImportRun(kind=kind, platform="tmall", source="file:test.csv", actor="cs-1")
        session.add(run)
        ingest.apply(session, kind, records, actor="cs-1", run=run)
        ingest.finish(session, run, actor="cs-1")
        return {"created": run.created, "updated": run.updated, "unchanged": run.unchanged, "id": run.id}


@pytest.fixture
def handed_on(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Record what apply hands to waves/cases, in place of their (other engineers') reactions."""
    calls: list[tuple] = []
    monkeypatch.setattr(waves, "order_changed", lambda s, o, *, before, actor: calls.append((o.order_no, before)))
    monkeypatch.setattr(waves, "orders_created", lambda s, os, *, actor: calls.extend((o.order_no, None) for o in os))
    monkeypatch.setattr(cases, "refund_changed", lambda s, r, *, before, actor: calls.append((r.refund_no, before)))
    monkeypatch.setattr(cases, "review_changed", lambda s, r, *, before, actor: calls.append((r.review_id, before)))
    return calls


def events_of(order_no: str) -> list[tuple[str, dict]]:
    with session_scope() as session:
        query = (
            select(PlatformOrderEvent.type, PlatformOrderEvent.data)
            .join(PlatformOrder, PlatformOrder.id == PlatformOrderEvent.order_id)
            .where(PlatformOrder.order_no == order_no)
            .order_by(PlatformOrderEvent.id)
        )
        return [(t, d) for t, d in session.execute(query)]


def test_new_orders_are_created_with_their_lines_and_an_imported_event(handed_on: list[tuple]) -> None:
    report = run_import("orders", [order(1), order(2, status="awaiting_payment")])
    assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 0)
    with session_scope() as session:
        stored = session.scalar(select(PlatformOrder).where(PlatformOrder.order_no == order(1).order_no))
        assert stored.paid_amount == Decimal("199.00")
        assert stored.buyer_nick == "t**8" and stored.receiver_phone == "138****1234"
        assert stored.ordered_at == datetime(2026, 12, 1, 2, 30, tzinfo=ZoneInfo("UTC"))
        lines = session.scalars(select(PlatformOrderLine).where(PlatformOrderLine.order_id == stored.id)).all()
        assert [(line.line_no, line.sku, line.quantity) for line in lines] == [(1, "TEE-WHITE-M", 1)]
    assert events_of(order(1).order_no) == [
        (
            "order.imported",
            {"status": "paid", "platform_status": "买家已付款，等待卖家发货", "import_run": report["id"]},
        )
    ]
    assert sorted(handed_on) == [(order(1).order_no, None), (order(2).order_no, None)]


def test_the_same_records_twice_change_nothing(handed_on: list[tuple]) -> None:
    records = [order(n) for n in range(5)]
    run_import("orders", records)
    handed_on.clear()
    # The same amount spelled differently is the same data.
    second = run_import("orders", [replace(r, paid_amount=Decimal("199")) for r in records])
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 5)
    assert handed_on == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PlatformOrderEvent)) == 5
        assert session.scalar(select(func.count()).select_from(PlatformOrderLine)) == 5


def test_a_changed_status_updates_the_order_and_hands_on_the_before_status(handed_on: list[tuple]) -> None:
    run_import("orders", [order(1), order(2)])
    with session_scope() as session:
        first_id = session.scalar(select(PlatformOrder.id).where(PlatformOrder.order_no == order(1).order_no))
    handed_on.clear()
    later = [
        order(1, status="shipped", tracking_no="SF1234567890", carrier="顺丰速运"),
        order(2, seller_note="加急"),
    ]
    report = run_import("orders", later)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 2, 0)
    # Only the status change is handed on; a changed note is an update without a move.
    assert handed_on == [(order(1).order_no, "paid")]
    assert events_of(order(1).order_no)[-1] == (
        "order.status_changed",
        {"from": "paid", "to": "shipped", "platform_status": "卖家已发货，等待买家确认", "import_run": report["id"]},
    )
    assert [t for t, _ in events_of(order(2).order_no)] == ["order.imported"]
    with session_scope() as session:
        stored = session.get(PlatformOrder, first_id)
        assert (stored.status, stored.tracking_no) == ("shipped", "SF1234567890")


def test_an_orders_lines_are_replaced_when_it_changes(handed_on: list[tuple]) -> None:
    run_import("orders", [order(1)])
    two_lines = (
        OrderLineRecord(sku="TEE-BLACK-L", title="纯棉T恤 黑", quantity=2, price=Decimal("99")),
        OrderLineRecord(sku=None, title="赠品", quantity=1, price=Decimal("0")),
    )
    run_import("orders", [order(1, lines=two_lines)])
    with session_scope() as session:
        lines = session.execute(
            select(PlatformOrderLine.line_no, PlatformOrderLine.sku).order_by(PlatformOrderLine.line_no)
        ).all()
    assert [tuple(line) for line in lines] == [(1, "TEE-BLACK-L"), (2, None)]


def test_a_key_repeated_in_one_call_is_applied_in_order(handed_on: list[tuple]) -> None:
    report = run_import("orders", [order(1), order(1, status="shipped")])
    assert (report["created"], report["updated"]) == (1, 1)
    assert handed_on == [(order(1).order_no, None), (order(1).order_no, "paid")]


def test_more_records_than_a_batch_are_all_written(handed_on: list[tuple]) -> None:
    report = run_import("orders", [order(n) for n in range(ingest.BATCH + 7)])
    assert report["created"] == ingest.BATCH + 7
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PlatformOrder)) == ingest.BATCH + 7


def test_refunds_are_upserted_and_a_status_change_handed_on(handed_on: list[tuple]) -> None:
    assert run_import("refunds", [refund(1), refund(2)])["created"] == 2
    handed_on.clear()
    report = run_import("refunds", [refund(1, status="refunded"), refund(2)])
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 1)
    assert handed_on == [("R1", "requested")]
    with session_scope() as session:
        stored = session.scalar(select(PlatformRefund).where(PlatformRefund.refund_no == "R1"))
        assert (stored.status, stored.amount) == ("refunded", Decimal("99.50"))


def test_reviews_hand_on_a_changed_rating_only(handed_on: list[tuple]) -> None:
    run_import("reviews", [review(1, rating=1), review(2)])
    assert sorted(handed_on) == [("V1", None), ("V2", None)]
    handed_on.clear()
    report = run_import("reviews", [review(1, rating=5), replace(review(2), content="追评：很好")])
    assert report["updated"] == 2
    assert handed_on == [("V1", 1)]
    with session_scope() as session:
        assert session.scalar(select(PlatformReview.rating).where(PlatformReview.review_id == "V1")) == 5


def test_finish_records_one_audit_event_with_the_counts(handed_on: list[tuple]) -> None:
    report = run_import("orders", [order(n) for n in range(3)])
    with session_scope() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.type == "import.finished")).all()
        run = session.get(ImportRun, report["id"])
        assert run.finished_at is not None
    assert len(events) == 1
    assert events[0].data["created"] == 3 and events[0].data["import_run"] == report["id"]


def test_a_record_outside_the_canon_is_refused_naming_the_field(handed_on: list[tuple]) -> None:
    with pytest.raises(ValidationFailed) as refused:
        run_import("orders", [order(1), order(2, status="发货中")])
    assert [(p.field, p.rule) for p in refused.value.problems] == [("status", "enum")]
    with pytest.raises(ValidationFailed) as wrong_kind:
        run_import("refunds", [order(1)])
    assert wrong_kind.value.problems[0].field == "records"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PlatformOrder)) == 0
