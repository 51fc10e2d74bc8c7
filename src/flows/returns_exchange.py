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
from ecomflow.engine.rules.returns_policy import check_return_policy
from ecomflow.engine.shop.payments import LedgerPaymentProvider, issue_refund
from ecomflow.engine.shop.ratings import ReportedRatings
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "returns_exchange"


@task
def policy_check(params: dict[str, Any], requested_at: datetime, rules: dict[str, Any]) -> dict[str, Any]:
    """Judge the request against 七日无理由退货 and the excluded categories (the instance's `rules.returns`)."""
    requested_on = requested_at.astimezone(ZoneInfo(get_definitions().timezone)).date()
    verdict = check_return_policy(
        delivered_on=date.fromisoformat(params["delivered_on"]),
        requested_on=requested_on,
        category=params["category"],
        no_reason_days=int(rules["no_reason_days"]),
        excluded_categories=frozenset(rules["excluded_categories"]),
    )
    return verdict.as_dict()


@task
def refund(
    instance_id: str, params: dict[str, Any], deduction: str, received_at: datetime, terms: dict[str, Any]
) -> dict[str, Any]:
    """Pay the refund through the payment provider, exactly once per return, in the currency and time terms given."""
    with session_scope() as session:
        paid = issue_refund(
            session,
            provider=LedgerPaymentProvider(),
            instance_id=instance_id,
            order_id=params["order_id"],
            amount=Decimal(str(params["amount"])),
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


@process_flow(PROCESS, written_for={1})
def returns_exchange(run: ProcessRun) -> dict[str, Any]:
    """售后退换货流程: policy check, review, parcel, inspection, refund or reship, follow-up."""
    params = run.params
    returns_rules = run.rule("returns")
    verdict = run.auto("policy_check", policy_check, params, run.started_at, returns_rules)
    review = run.approval("cs_review", context={"policy": verdict})
    if not review.approved:
        return run.finish("rejected", by=review.by, comment=review.comment)
    if not verdict["eligible"]:
        goodwill = run.approval(
            "goodwill_approval", context={"policy": verdict, "cs_review": review.data, "cs_reviewer": review.by}
        )
        if not goodwill.approved:
            return run.finish("rejected", by=goodwill.by, comment=goodwill.comment)
    parcel = run.human("await_parcel", context={"policy": verdict})
    if parcel.expired:
        return run.finish("closed_no_parcel")
    inspection, deduction = _inspect_until_settled(run, {"parcel": parcel.data})
    if params["kind"] == "return":
        terms = {"currency": run.rule("currency", "CNY"), "refund_within": returns_rules["refund_within"]}
        paid = run.auto("refund", refund, run.instance_id, params, str(deduction), inspection.at, terms)
        outcome, details = "refunded", {"refund": paid}
    else:
        reship = run.human("reship", context={"inspection": inspection.data})
        outcome, details = "reshipped", {"reship": reship.data}
    rating = run.auto("check_rating", check_rating, params["order_id"])["rating"]
    if rating is not None and rating <= int(returns_rules["bad_rating_at_most"]):
        follow_up = run.human("follow_up", context={"rating": rating, "outcome": outcome})
        details["follow_up"] = follow_up.data
    return run.finish(outcome, restock=inspection.data["restock"], **details)
