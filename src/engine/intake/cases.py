"""Refund requests start and move returns_exchange cases; middle and bad reviews (中差评) reach the follow-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.db.models import ProcessInstance
from ecomflow.engine.db.platform_models import PlatformOrder, PlatformOrderLine, PlatformRefund, PlatformReview
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.instances.lifecycle import ACTIVE_INSTANCE_STATES, cancel_instance, start_instance
from ecomflow.engine.intake.parcels import fill_parcel
from ecomflow.engine.people.principals import SYSTEM
from ecomflow.engine.shop.ratings import report_rating

RETURNS = "returns_exchange"
REVIEW_FOLLOW_UP = "review_follow_up"
# A request first seen withdrawn, refused or already refunded needs no case: nothing is left to do or to pay.
NO_CASE_STATUSES = frozenset({"cancelled", "rejected", "refunded"})
# The refund reason's wording (退款原因) that names a seller's fault; anything else is 七天无理由.
CAUSE_WORDS = (
    ("faulty", ("质量问题", "破损", "损坏", "做工", "瑕疵", "坏了", "不能使用", "无法使用")),
    ("wrong_item", ("发错", "错发", "少件", "漏发", "少发")),
    ("not_as_described", ("描述不符", "与描述", "色差", "材质不符", "尺码不符", "假货", "不是正品")),
)


def refund_changed(session: Session, refund: PlatformRefund, *, before: str | None, actor: str) -> None:
    """React, in the import's transaction, to a refund request that is new (before None) or whose status changed."""
    if refund.instance_id is None:
        if refund.status not in NO_CASE_STATUSES:
            _start_return(session, refund, actor=actor)
        return
    case = session.get(ProcessInstance, refund.instance_id)
    if case is None or case.state not in ACTIVE_INSTANCE_STATES:
        return  # a replay of a status the case already followed
    if refund.status == "cancelled":
        cancel_instance(
            session,
            instance_id=case.id,
            principal=SYSTEM,
            reason=f"refund {refund.refund_no} withdrawn on {refund.platform}: {refund.platform_status}",
        )
    elif refund.return_tracking_no:
        fill_parcel(session, refund, actor=SYSTEM.name)


def _start_return(session: Session, refund: PlatformRefund, *, actor: str) -> None:
    """Start the returns_exchange case of a refund request; a request without SKU or amount is audited, not started."""
    params, missing = return_params(session, refund)
    about = {"platform": refund.platform, "refund_no": refund.refund_no}
    if missing:
        record_event(session, type="refund.case_not_started", actor=actor, data={**about, "missing": missing})
        return
    try:
        instance = start_instance(
            session,
            definitions=get_definitions(),
            process_key=RETURNS,
            business_key=f"refund-{refund.platform}-{refund.refund_no}",
            params=params,
            principal=SYSTEM,
        )
    except ValidationFailed as refused:
        # The start form's rules are checked before anything is written: one odd request must not fail the import.
        problems = [{"field": p.field, "rule": p.rule, "message": p.message} for p in refused.problems]
        record_event(session, type="refund.case_not_started", actor=actor, data={**about, "refused": problems})
        return
    refund.instance_id = instance.id


def return_params(session: Session, refund: PlatformRefund) -> tuple[dict[str, Any], list[str]]:
    """Return returns_exchange's start params built from the refund request, and the fields it cannot fill."""
    line = _order_line(session, refund)
    sku = refund.sku or (line.sku if line is not None else None)
    amount = refund.amount if refund.amount > 0 else (refund.paid_amount or Decimal(0))
    if amount <= 0 and line is not None:
        amount = line.price  # 换货 asks no money back: the case's amount is what the goods cost
    missing = [name for name, value in (("sku", sku), ("amount", amount > 0)) if not value]
    params: dict[str, Any] = {
        "order_id": refund.order_no,
        "sku": sku,
        "kind": refund.kind,
        "cause": cause_of(refund.reason),
        "reason": (refund.reason or f"{refund.platform_status} ({refund.platform} {refund.refund_no})")[:2000],
        "category": "normal",
        "amount": float(amount),
    }
    if line is not None and line.quantity > 1 and line.sku == sku:
        params["quantity"] = line.quantity
    return params, missing


def cause_of(reason: str | None) -> str:
    """Return the form's cause for the refund reason's wording; no_reason (七天无理由) unless it names a fault."""
    for cause, words in CAUSE_WORDS:
        if reason and any(word in reason for word in words):
            return cause
    return "no_reason"


def _order_line(session: Session, refund: PlatformRefund) -> PlatformOrderLine | None:
    """Return the order line the refund is about: its SKU's, else the one its title names, else the only one."""
    query = (
        select(PlatformOrderLine)
        .join(PlatformOrder, PlatformOrder.id == PlatformOrderLine.order_id)
        .where(PlatformOrder.platform == refund.platform, PlatformOrder.order_no == refund.order_no)
        .order_by(PlatformOrderLine.line_no)
    )
    lines = list(session.scalars(query))
    for line in lines:
        if (refund.sku and line.sku == refund.sku) or (not refund.sku and refund.title and line.title == refund.title):
            return line
    return lines[0] if len(lines) == 1 else None


def review_changed(session: Session, review: PlatformReview, *, before: int | None, actor: str) -> None:
    """React, in the import's transaction, to a review that is new (before None) or whose rating changed."""
    report_rating(session, order_id=review.order_no, rating=review.rating, actor=actor)
    bad_at_most = int(get_definitions().rules["returns"]["bad_rating_at_most"])
    if review.rating > bad_at_most or review.instance_id is not None:
        return
    if _active_return_of(session, review):
        return  # the case's check_rating reads the rating just recorded and opens its own follow_up
    params: dict[str, Any] = {"order_id": review.order_no, "platform": review.platform, "rating": review.rating}
    if review.content:
        params["content"] = review.content[:2000]
    if review.sku:
        params["sku"] = review.sku
    try:
        instance = start_instance(
            session,
            definitions=get_definitions(),
            process_key=REVIEW_FOLLOW_UP,
            business_key=f"review-{review.platform}-{review.review_id}",
            params=params,
            principal=SYSTEM,
        )
    except ValidationFailed as refused:
        problems = [{"field": p.field, "rule": p.rule, "message": p.message} for p in refused.problems]
        data = {"platform": review.platform, "review_id": review.review_id, "refused": problems}
        record_event(session, type="review.follow_up_not_started", actor=actor, data=data)
        return
    review.instance_id = instance.id


def _active_return_of(session: Session, review: PlatformReview) -> bool:
    """Tell whether a returns case of the reviewed order is still running (it will check the rating itself)."""
    query = (
        select(ProcessInstance.id)
        .join(PlatformRefund, PlatformRefund.instance_id == ProcessInstance.id)
        .where(
            PlatformRefund.platform == review.platform,
            PlatformRefund.order_no == review.order_no,
            ProcessInstance.state.in_(ACTIVE_INSTANCE_STATES),
        )
    )
    return session.scalar(query.limit(1)) is not None
