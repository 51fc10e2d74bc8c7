"""售后退换货流程 — returns and exchanges, process 10 of PROCESSES.md."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import parse_duration
from ecomflow.engine.errors import StockShort
from ecomflow.engine.intake.parcels import reported_parcel
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.rules.returns_policy import check_return_policy
from ecomflow.engine.shop.catalog import priced_variants
from ecomflow.engine.shop.payments import LedgerPaymentProvider, issue_refund
from ecomflow.engine.shop.ratings import ReportedRatings
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, move
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "returns_exchange"


# Version 1's case kinds, as version 2 names them.
V1_KINDS = {"return": "return_refund", "exchange": "exchange"}


def kind_of(params: dict[str, Any]) -> str:
    """Return the case kind: refund_only (仅退款), return_refund (退货退款) or exchange (换货)."""
    return V1_KINDS.get(params["kind"], params["kind"])


@task
def policy_check(params: dict[str, Any], requested_at: datetime, rules: dict[str, Any]) -> dict[str, Any]:
    """Judge the case against 七日无理由退货 or the seller's fault (the instance's `rules.returns`)."""
    requested_on = requested_at.astimezone(ZoneInfo(get_definitions().timezone)).date()
    delivered = params.get("delivered_on")
    verdict = check_return_policy(
        delivered_on=date.fromisoformat(delivered) if delivered else None,
        requested_on=requested_on,
        category=params["category"],
        no_reason_days=int(rules["no_reason_days"]),
        excluded_categories=frozenset(rules["excluded_categories"]),
        cause=params.get("cause") or "no_reason",
        opened=bool(params.get("opened")),
        excluded_when_opened=frozenset(rules.get("excluded_when_opened") or ()),
        seller_fault_causes=frozenset(rules.get("seller_fault_causes") or ()),
    )
    return verdict.as_dict()


@task
def refund(
    instance_id: str,
    params: dict[str, Any],
    deduction: str,
    received_at: datetime,
    terms: dict[str, Any],
    shipping_refunded: str = "0",
) -> dict[str, Any]:
    """Pay the refund (and return shipping the seller owes) once per case, in the currency and time terms given."""
    with session_scope() as session:
        paid = issue_refund(
            session,
            provider=LedgerPaymentProvider(),
            instance_id=instance_id,
            order_id=params["order_id"],
            amount=Decimal(str(params["amount"])) + Decimal(shipping_refunded),
            deduction=Decimal(deduction),
            currency=terms["currency"],
            received_at=received_at,
            pay_within=parse_duration(terms["refund_within"]),
        )
        return {"refund_id": paid.id, "amount": str(paid.amount), "reference": paid.provider_ref}


@task
def check_rating(order_id: str) -> dict[str, Any]:
    """Ask the marketplace how the customer rated the order."""
    with session_scope() as session:
        return {"rating": ReportedRatings().order_rating(session, order_id=order_id)}


def _inspect_until_settled(run: ProcessRun, context: dict[str, Any]) -> tuple[StepOutcome, Decimal]:
    """Inspect the parcel; a damage deduction needs operations, whose reject sends it back to inspect."""
    round = 1
    while True:
        inspection = run.human("inspect", round=round, context=context)
        damaged = inspection.data["condition"] == "damaged"
        deduction = Decimal(str(inspection.data.get("deduction") or 0)) if damaged else Decimal(0)
        if deduction == 0:
            return inspection, deduction
        decision = run.approval(
            "deduction_approval",
            round=round,
            context={"inspection": inspection.data, "inspected_by": inspection.by, "amount": run.params["amount"]},
        )
        if decision.approved:
            return inspection, deduction
        context = {**context, "rework": {"round": round, "comment": decision.comment, "by": decision.by}}
        round = run.next_round("inspect", round)


@task
def move_case_stock(instance_id: str, kind: str, sku: str, quantity: int) -> dict[str, Any]:
    """Restock the inspected parcel or send the exchange's replacement out of the online warehouse, once per case.

    A SKU the catalogue lacks, or a replacement the ledger has no stock for, is reported in the result rather
    than failing a case whose parcel is already on its way: the warehouse corrects the ledger by an adjustment.
    """
    with session_scope() as session:
        if not priced_variants(session, [sku]):
            return {"moved": False, "kind": kind, "sku": sku, "problem": f"SKU {sku} is not in the catalogue"}
        try:
            moved = move(
                session,
                kind=kind,
                sku=sku,
                location=ONLINE_WAREHOUSE,
                quantity=quantity,
                business_key=f"{instance_id}:{kind}",
                actor=SYSTEM_ACTOR,
                instance_id=instance_id,
            )
        except StockShort as short:
            return {"moved": False, "kind": kind, "sku": sku, "problem": str(short)}
        return {"moved": True, "kind": kind, "sku": sku, "quantity": quantity, "movement_id": moved.movement.id}


@task
def platform_parcel(instance_id: str) -> dict[str, Any]:
    """Return the parcel the buyer reported on the platform's refund request of this case, if any yet."""
    with session_scope() as session:
        parcel = reported_parcel(session, instance_id=instance_id)
    return {"parcel": parcel}


def return_shipping(parcel: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """Return the parcel's recorded shipping cost and who pays it (the seller on a seller's fault).

    A parcel the platform reported has no cost (its refund feed carries none): recorded as unknown, nothing added.
    """
    paid_by = verdict.get("shipping_paid_by", "buyer")
    if parcel.get("return_shipping_cost") is None:
        return {"cost": None, "paid_by": paid_by, "refunded": "0"}
    cost = Decimal(str(parcel["return_shipping_cost"]))
    return {"cost": str(cost), "paid_by": paid_by, "refunded": str(cost if paid_by == "seller" else Decimal(0))}


def _await_parcel(run: ProcessRun, verdict: dict[str, Any], kind: str) -> StepOutcome | dict[str, Any]:
    """Return the parcel the platform already reported (version 3), else wait for the await_parcel task."""
    if any(step.key == "platform_parcel" for step in run.spec.steps):
        reported = run.auto("platform_parcel", platform_parcel, run.instance_id)["parcel"]
        if reported is not None:
            return reported
    return run.human("await_parcel", context={"policy": verdict, "kind": kind})


@process_flow(PROCESS, written_for={1, 2, 3})
def returns_exchange(run: ProcessRun) -> dict[str, Any]:
    """售后退换货流程: policy check, review, then refund only (仅退款), return and refund, or exchange (换货)."""
    params = run.params
    kind = kind_of(params)
    returns_rules = run.rule("returns")
    verdict = run.auto("policy_check", policy_check, params, run.started_at, returns_rules)
    review = run.approval("cs_review", context={"policy": verdict, "kind": kind})
    if not review.approved:
        return run.finish("rejected", by=review.by, comment=review.comment)
    if not verdict["eligible"]:
        goodwill = run.approval(
            "goodwill_approval", context={"policy": verdict, "cs_review": review.data, "cs_reviewer": review.by}
        )
        if not goodwill.approved:
            return run.finish("rejected", by=goodwill.by, comment=goodwill.comment)
    terms = {"currency": run.rule("currency", "CNY"), "refund_within": returns_rules["refund_within"]}
    if kind == "refund_only":
        # 仅退款: no parcel comes back; the refund is due within refund_within of the review.
        paid = run.auto("refund", refund, run.instance_id, params, "0", review.at, terms)
        return _after_care(run, "refunded", {"kind": kind, "refund": paid})
    awaited = _await_parcel(run, verdict, kind)
    if isinstance(awaited, StepOutcome) and awaited.expired:
        return run.finish("closed_no_parcel")
    parcel = awaited.data if isinstance(awaited, StepOutcome) else awaited
    shipping = return_shipping(parcel, verdict)
    inspection, deduction = _inspect_until_settled(run, {"parcel": parcel, "return_shipping": shipping})
    # Version 2 moves stock through the ledger: the parcel back on the shelf, the replacement out.
    moves_stock = any(step.key == "restock" for step in run.spec.steps)
    quantity = int(params.get("quantity") or 1)
    stock: dict[str, Any] = {}
    if moves_stock and inspection.data["restock"] == "yes":
        stock["restock"] = run.auto("restock", move_case_stock, run.instance_id, "restock", params["sku"], quantity)
    if kind == "return_refund":
        paid = run.auto(
            "refund", refund, run.instance_id, params, str(deduction), inspection.at, terms, shipping["refunded"]
        )
        outcome, details = "refunded", {"refund": paid}
    else:
        reship = run.human("reship", context={"inspection": inspection.data, "return_shipping": shipping})
        outcome, details = "reshipped", {"reship": reship.data}
        if moves_stock:
            stock["exchange_out"] = run.auto(
                "exchange_out", move_case_stock, run.instance_id, "exchange_out", params["sku"], quantity
            )
    details = {**details, "kind": kind, "return_shipping": shipping, "restock": inspection.data["restock"]}
    if stock:
        details["stock"] = stock
    return _after_care(run, outcome, details)


def _after_care(run: ProcessRun, outcome: str, details: dict[str, Any]) -> dict[str, Any]:
    """A middle or bad rating (中差评) gets a follow-up call before the case closes."""
    returns_rules = run.rule("returns")
    rating = run.auto("check_rating", check_rating, run.params["order_id"])["rating"]
    if rating is not None and rating <= int(returns_rules["bad_rating_at_most"]):
        follow_up = run.human("follow_up", context={"rating": rating, "outcome": outcome})
        details["follow_up"] = follow_up.data
    return run.finish(outcome, **details)
