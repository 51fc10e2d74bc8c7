"""Refund requests start, fill and cancel returns_exchange cases; bad reviews reach a follow-up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent, HumanTask, OrderRating, OutboxMessage, ProcessInstance
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, PlatformRefund, PlatformReview
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.intake.cases import cause_of, refund_changed, review_changed
from ecomflow.engine.intake.parcels import reported_parcel
from ecomflow.engine.tasks.step_tasks import open_task

pytestmark = pytest.mark.usefixtures("clean_db")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def add_refund(**fields: Any) -> int:
    values: dict[str, Any] = {
        "platform": "tmall",
        "refund_no": f"R{uuid.uuid4().hex[:10]}",
        "order_no": "3401234567890123456",
        "sku": "TEE-RED-M",
        "kind": "return_refund",
        "status": "requested",
        "platform_status": "买家已经申请退款，等待卖家同意",
        "amount": Decimal("89.00"),
        "reason": "七天无理由退换货",
        "requested_at": NOW,
        "content_hash": "h",
    }
    values.update(fields)
    with session_scope() as session:
        refund = PlatformRefund(**values)
        session.add(refund)
        session.flush()
        return refund.id


def change_refund(refund_id: int, *, before: str | None, **fields: Any) -> PlatformRefund:
    """Set the fields as an import would, then call the reaction in the same transaction."""
    with session_scope() as session:
        refund = session.get(PlatformRefund, refund_id)
        for key, value in fields.items():
            setattr(refund, key, value)
        refund_changed(session, refund, before=before, actor="import:test")
        session.flush()
        session.expunge(refund)
        return refund


def case_of(instance_id: str) -> ProcessInstance:
    with session_scope() as session:
        instance = session.get(ProcessInstance, instance_id)
        session.expunge(instance)
        return instance


def open_step(instance_id: str, step: str) -> str:
    with session_scope() as session:
        spec = get_definitions().process("returns_exchange").step(step)
        return open_task(session, instance_id=instance_id, step=spec, round=1).id


@pytest.mark.parametrize("kind", ["refund_only", "return_refund", "exchange"])
def test_a_new_refund_request_starts_a_case_of_its_kind(kind: str) -> None:
    refund = change_refund(add_refund(kind=kind), before=None)
    case = case_of(refund.instance_id)
    assert case.process_key == "returns_exchange" and case.state == "running"
    assert case.business_key == f"refund-tmall-{refund.refund_no}" and case.started_by == "system"
    assert case.params == {
        "order_id": "3401234567890123456",
        "sku": "TEE-RED-M",
        "kind": kind,
        "cause": "no_reason",
        "reason": "七天无理由退换货",
        "category": "normal",
        "amount": 89.0,
    }
    with session_scope() as session:
        queued = session.scalars(select(OutboxMessage.kind).where(OutboxMessage.instance_id == case.id)).all()
    assert queued == ["start_run"]


@pytest.mark.parametrize(
    ("reason", "cause"),
    [
        ("质量问题", "faulty"),
        ("收到商品破损", "faulty"),
        ("卖家发错货", "wrong_item"),
        ("与商家描述不符", "not_as_described"),
        ("不喜欢/不想要", "no_reason"),
        (None, "no_reason"),
    ],
)
def test_the_reason_wording_names_the_cause(reason: str | None, cause: str) -> None:
    assert cause_of(reason) == cause


def test_a_missing_sku_is_taken_from_the_only_order_line_and_an_exchange_costs_the_line_price() -> None:
    with session_scope() as session:
        order = PlatformOrder(
            platform="jd",
            order_no="JD9988776655",
            status="completed",
            platform_status="完成",
            paid_amount=Decimal("238.00"),
            ordered_at=NOW,
            content_hash="h",
        )
        session.add(order)
        session.flush()
        session.add(
            PlatformOrderLine(order_id=order.id, line_no=1, sku="MUG-BLUE", title="马克杯", quantity=2, price=119)
        )
    refund_id = add_refund(platform="jd", order_no="JD9988776655", sku=None, kind="exchange", amount=Decimal("0"))
    case = case_of(change_refund(refund_id, before=None).instance_id)
    assert (case.params["sku"], case.params["amount"], case.params["quantity"]) == ("MUG-BLUE", 119.0, 2)


def test_a_request_without_sku_anywhere_is_audited_not_started() -> None:
    refund = change_refund(add_refund(sku=None, order_no="NOORDER123"), before=None)
    assert refund.instance_id is None
    with session_scope() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.type == "refund.case_not_started"))
    assert event.data["missing"] == ["sku"] and event.data["refund_no"] == refund.refund_no


def test_a_request_the_start_form_refuses_is_audited_and_the_import_goes_on() -> None:
    refund = change_refund(add_refund(order_no="T_1"), before=None)  # the form's order id allows no underscore
    assert refund.instance_id is None
    with session_scope() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.type == "refund.case_not_started"))
        assert [problem["field"] for problem in event.data["refused"]] == ["order_id"]
        assert session.scalar(select(ProcessInstance.id)) is None


@pytest.mark.parametrize("status", ["cancelled", "rejected", "refunded"])
def test_a_request_first_seen_closed_starts_nothing(status: str) -> None:
    assert change_refund(add_refund(status=status), before=None).instance_id is None
    with session_scope() as session:
        assert session.scalar(select(ProcessInstance.id)) is None


def test_the_buyers_tracking_number_completes_the_waiting_parcel_step_and_resumes_the_run() -> None:
    refund = change_refund(add_refund(), before=None)
    task_id = open_step(refund.instance_id, "await_parcel")
    shipped = {"status": "returned", "return_tracking_no": "SF1234567890", "return_carrier": "顺丰速运"}
    change_refund(refund.id, before="awaiting_return", **shipped)
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        assert (task.state, task.completed_by) == ("completed", "system")
        assert task.output == {"return_tracking_no": "SF1234567890", "carrier": "顺丰速运"}
        resumes = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "resume_run")).all()
        assert [m.task_id for m in resumes] == [task_id]
        assert session.scalar(select(AuditEvent.type).where(AuditEvent.type == "refund.parcel_filled"))
    # A replay of the same status finds no waiting step and queues nothing more.
    change_refund(refund.id, before="returned", **shipped)
    with session_scope() as session:
        assert len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "resume_run")).all()) == 1


def test_a_parcel_reported_before_the_step_opens_is_read_by_the_flow() -> None:
    refund = change_refund(add_refund(), before=None)
    with session_scope() as session:
        assert reported_parcel(session, instance_id=refund.instance_id) is None
    change_refund(refund.id, before="requested", status="returned", return_tracking_no="YT9876543210")
    with session_scope() as session:
        assert reported_parcel(session, instance_id=refund.instance_id) == {"return_tracking_no": "YT9876543210"}
        assert session.scalar(select(HumanTask.id)) is None


def test_a_withdrawn_request_cancels_its_case_with_its_open_tasks_audited() -> None:
    refund = change_refund(add_refund(), before=None)
    task_id = open_step(refund.instance_id, "cs_review")
    change_refund(refund.id, before="requested", status="cancelled", platform_status="退款关闭")
    case = case_of(refund.instance_id)
    assert case.state == "cancelled"
    with session_scope() as session:
        assert session.get(HumanTask, task_id).state == "cancelled"
        event = session.scalar(select(AuditEvent).where(AuditEvent.type == "instance.cancelled"))
        assert event.actor == "system" and "退款关闭" in event.data["reason"]
    # Replayed, the cancellation finds the case ended and changes nothing.
    change_refund(refund.id, before="cancelled", status="cancelled")
    with session_scope() as session:
        assert len(session.scalars(select(AuditEvent).where(AuditEvent.type == "instance.cancelled")).all()) == 1


def add_review(rating: int, order_no: str = "3401234567890123456") -> PlatformReview:
    with session_scope() as session:
        review = PlatformReview(
            platform="tmall",
            review_id=f"V{uuid.uuid4().hex[:10]}",
            order_no=order_no,
            rating=rating,
            content="质量一般，洗了就掉色",
            reviewed_at=NOW,
            content_hash="h",
        )
        session.add(review)
        session.flush()
        review_changed(session, review, before=None, actor="import:test")
        session.flush()
        session.expunge(review)
        return review


def test_a_bad_review_records_the_rating_and_starts_a_follow_up() -> None:
    review = add_review(1)
    case = case_of(review.instance_id)
    assert (case.process_key, case.business_key) == ("review_follow_up", f"review-tmall-{review.review_id}")
    assert case.params == {"order_id": review.order_no, "platform": "tmall", "rating": 1, "content": review.content}
    with session_scope() as session:
        assert session.get(OrderRating, review.order_no).rating == 1


def test_a_middle_review_is_bad_enough_and_a_good_one_only_records_its_rating() -> None:
    assert add_review(3, order_no="ORDER-MID-1").instance_id is not None
    good = add_review(5, order_no="ORDER-GOOD-1")
    assert good.instance_id is None
    with session_scope() as session:
        assert session.get(OrderRating, "ORDER-GOOD-1").rating == 5
        assert session.scalars(select(ProcessInstance.process_key)).all() == ["review_follow_up"]


def test_a_bad_review_of_an_order_with_a_running_return_leaves_the_follow_up_to_that_case() -> None:
    refund = change_refund(add_refund(), before=None)
    review = add_review(2, order_no=refund.order_no)
    assert review.instance_id is None
    with session_scope() as session:
        assert session.get(OrderRating, refund.order_no).rating == 2
        assert session.scalars(select(ProcessInstance.process_key)).all() == ["returns_exchange"]


def test_a_bad_review_the_follow_up_form_refuses_is_audited_and_its_rating_kept() -> None:
    review = add_review(1, order_no="T_1")
    assert review.instance_id is None
    with session_scope() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.type == "review.follow_up_not_started"))
        assert [problem["field"] for problem in event.data["refused"]] == ["order_id"]
        assert session.get(OrderRating, "T_1").rating == 1
