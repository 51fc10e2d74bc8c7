"""直通车，活动，钻展操作流程 — ads and events, process 8 of PROCESSES.md.

An event ends at the end of its last day (midnight after event_ends_on, calendar time zone);
the effect is tracked then, due 3 days later. The sweeper reminds about the review result daily.

Event prices (活动价, e.g. 聚划算) follow the price rule on master data: below the list price is a
deviation the owner approves with a reason; at or beyond the red line, refused back to the selection.
Perks (free shipping, a gift SKU taken from stock, coupons within the budget) are checked and saved
with the event, so the listings of its SKUs carry them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.rules.budget import approver_role
from ecomflow.engine.rules.price_policy import PriceRule
from ecomflow.engine.shop.pricing import (
    check_perks,
    judge_lines,
    perks_of,
    record_deviations,
    summarise,
    take_gift_stock,
)
from ecomflow.engine.shop.process_records import save_campaign
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "ads_and_events"


def event_end(ends_on: str) -> datetime:
    """Return when an event whose last day is ends_on is over: the following local midnight."""
    last_day = date.fromisoformat(ends_on)
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ZoneInfo(get_definitions().timezone))


@task
def event_price_check(selection: dict[str, Any], rules: dict[str, Any]) -> dict[str, Any]:
    """Judge each event price against its list price and check the perks; say who approves."""
    rule = PriceRule.of(rules["price_policy"])
    perks = perks_of(selection)
    lines = [(line["sku"], line["event_price"]) for line in selection.get("event_prices") or []]
    with session_scope() as session:
        summary = summarise(judge_lines(session, lines, rule), rule)
        perk_findings = check_perks(session, perks, budget=selection["budget"])
    budget_approver = approver_role(selection["budget"], owner_above=rules["owner_approval_above"])
    return {
        **summary,
        "perks": perks,
        "perk_findings": perk_findings,
        "approver": "owner" if summary["deviations"] or budget_approver == "owner" else "operations",
    }


@task
def save_event(
    instance_id: str, selection: dict[str, Any], check: dict[str, Any], reason: str, by: str
) -> dict[str, Any]:
    """Record the approved event with its prices and perks, the owner's deviations and the gift's stock, once."""
    with session_scope() as session:
        row = save_campaign(
            session,
            instance_id=instance_id,
            theme=selection["event"],
            starts_on=selection["event_starts_on"],
            ends_on=selection["event_ends_on"],
            budget=Decimal(str(selection["budget"])),
            details={
                "kind": "event",
                "platform": selection["platform"],
                "channel": selection["channel"],
                "skus": [
                    {"sku": line["sku"], "online_price": line["event_price"]}
                    for line in selection.get("event_prices") or []
                ],
                # The event's goods, for its ROI (reports/ad_kpis.py): event prices are given for some only.
                "candidate_skus": list(selection.get("candidate_skus") or []),
                "perks": check["perks"],
                "approved_by": by,
            },
        )
        session.flush()
        deviations = record_deviations(
            session,
            verdicts=check["deviations"],
            reason=reason,
            approved_by=by,
            instance_id=instance_id,
            process_key=PROCESS,
        )
        gift = take_gift_stock(
            session,
            perks=check["perks"],
            key=f"{PROCESS}/{instance_id}/gift",
            actor=SYSTEM_ACTOR,
            instance_id=instance_id,
        )
        return {"campaign_id": row.id, "deviations": deviations, "gift_stock": gift}


def _selection_until_approved(run: ProcessRun) -> tuple[StepOutcome, StepOutcome, int, dict[str, Any]]:
    """Select the products until approved: by operations, or by the owner above the threshold or for a deviation.

    A refused event price (the red line, an unknown SKU) or a perk that does not fit sends the selection back.
    """
    round = 1
    context: dict[str, Any] = {}
    rules = {"price_policy": run.rule("price_policy"), "owner_approval_above": run.rule("owner_approval_above")}
    while True:
        selection = run.human("select_products", round=round, context=context)
        check = run.auto("event_price_check", event_price_check, selection.data, rules, round=round)
        if check["refused"] or check["perk_findings"]:
            findings = [
                {"field": f"event_prices.{row['sku']}", "rule": "red_line", "message": row["message"]}
                for row in check["refused"]
            ] + check["perk_findings"]
            context = {
                "rework": {"round": round, "step": "event_price_check", "findings": findings},
                "previous_selection": selection.data,
            }
            round += 1
            continue
        step = "owner_budget_approval" if check["approver"] == "owner" else "budget_approval"
        review = {"selection": selection.data, "selected_by": selection.by, "price_check": check}
        decision = run.approval(step, round=round, context=review)
        reason = str(decision.data.get("reason") or decision.comment or "").strip()
        if decision.approved and check["deviations"] and not reason:
            context = {
                "rework": {"round": round, "by": decision.by, "comment": "an event price below list needs a reason"},
                "previous_selection": selection.data,
            }
            round += 1
            continue
        if decision.approved:
            return selection, decision, round, {**check, "reason": reason}
        context = {
            "rework": {"round": round, "comment": decision.comment, "by": decision.by},
            "previous_selection": selection.data,
        }
        round = run.next_round("select_products", round)


@process_flow(PROCESS, written_for={1, 2})
def ads_and_events(run: ProcessRun) -> dict[str, Any]:
    """直通车，活动，钻展操作流程: select products, budget approval, sign-up, review result, effect."""
    selection, budget, rounds, check = _selection_until_approved(run)
    saved = run.auto("save_event", save_event, run.instance_id, selection.data, check, check["reason"], budget.by)
    sign_up = run.human("sign_up", context={"selection": selection.data, "budget_approved_by": budget.by})
    review = run.human("review_result", context={"selection": selection.data, "sign_up": sign_up.data})
    if review.data["result"] != "approved":
        return run.finish(
            "not_accepted", platform_reference=sign_up.data["platform_reference"], notes=review.data.get("notes")
        )
    run.wait_until("await_event_end", event_end(selection.data["event_ends_on"]))
    effect = run.human("track_effect", context={"selection": selection.data, "sign_up": sign_up.data})
    return run.finish(
        "tracked",
        rounds=rounds,
        event=saved,
        platform_reference=sign_up.data["platform_reference"],
        gmv=effect.data["gmv"],
        spend=effect.data["spend"],
        roi=effect.data["roi"],
    )
