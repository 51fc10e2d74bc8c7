"""主题营销方案制定流程 — the themed campaign plan, process 2 of PROCESSES.md.

Price rule (同一定价，灵活促销, rules.price_policy): each SKU's campaign price is judged against its
list price in master data. Below it is a deviation the owner approves with a reason; at or beyond the
red line it is refused and the draft goes back. Perks (free shipping, a gift SKU taken from stock,
coupons / 满减 within the budget) are checked too and saved with the campaign, for the listings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.instances.lifecycle import get_instance
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
from ecomflow.engine.shop.process_records import save_campaign as record_campaign
from ecomflow.flows.artifacts import publish_table
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "themed_campaign_plan"
CREATIVE_FIELDS = ("purpose", "sizes", "copy", "deadline")


@task
def price_policy_check(
    instance_id: str,
    round: int,
    skus: list[dict[str, Any]],
    budget: float,
    rules: dict[str, Any],
    perks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge every SKU's campaign price against its list price, check the perks, and say who approves."""
    rule = PriceRule.of(rules["price_policy"])
    perks = perks or perks_of({})
    with session_scope() as session:
        verdicts = judge_lines(session, [(line["sku"], line["online_price"]) for line in skus], rule)
        perk_findings = check_perks(session, perks, budget=budget)
        business_key = get_instance(session, instance_id).business_key
    summary = summarise(verdicts, rule)
    budget_approver = approver_role(budget, owner_above=rules["owner_approval_above"])
    publish_table(
        f"{PROCESS}-{business_key}-price-policy-round-{round}",
        summary["rows"],
        description=f"Channel price rule, round {round} (同一定价，灵活促销): list prices from master data",
    )
    return {
        **summary,
        "perks": perks,
        "perk_findings": perk_findings,
        # Kept under its old name: the owner's task and earlier results read it.
        "violations": summary["deviations"],
        "budget": str(budget),
        "budget_approver": budget_approver,
        "needs_owner": bool(summary["deviations"]) or budget_approver == "owner",
    }


@task
def record_owner_deviations(instance_id: str, rows: list[dict[str, Any]], reason: str, by: str) -> dict[str, Any]:
    """Record the deviations the owner approved, with the reason, once."""
    with session_scope() as session:
        recorded = record_deviations(
            session, verdicts=rows, reason=reason, approved_by=by, instance_id=instance_id, process_key=PROCESS
        )
    return {"recorded": recorded}


@task
def save_campaign(instance_id: str, campaign: dict[str, Any], approvals: dict[str, Any]) -> dict[str, Any]:
    """Record the approved campaign, once per instance."""
    details = {key: value for key, value in campaign.items() if key not in ("theme", "starts_on", "ends_on", "budget")}
    with session_scope() as session:
        row = record_campaign(
            session,
            instance_id=instance_id,
            theme=campaign["theme"],
            starts_on=campaign["starts_on"],
            ends_on=campaign["ends_on"],
            budget=Decimal(str(campaign["budget"])),
            details={**details, "perks": perks_of(campaign), "approvals": approvals},
        )
        session.flush()
        gift = take_gift_stock(
            session,
            perks=perks_of(campaign),
            key=f"{PROCESS}/{instance_id}/gift",
            actor=SYSTEM_ACTOR,
            instance_id=instance_id,
        )
        return {"campaign_id": row.id, "gift_stock": gift}


def _rework(decision: StepOutcome, round: int) -> dict[str, Any]:
    return {"round": round, "comment": decision.comment, "by": decision.by}


def _refusal(check: dict[str, Any], round: int) -> dict[str, Any]:
    findings = [
        {"field": f"skus.{row['sku']}.online_price", "rule": "red_line", "message": row["message"]}
        for row in check["refused"]
    ] + check["perk_findings"]
    return {"round": round, "step": "price_policy_check", "findings": findings}


def _owner_reason(decision: StepOutcome) -> str:
    return str(decision.data.get("reason") or decision.comment or "").strip()


def _campaign_until_approved(run: ProcessRun) -> tuple[StepOutcome, dict[str, Any], int]:
    """Draft, check and approve the campaign; a refusal or any reject sends it back to the draft, round+1."""
    round = 1
    context: dict[str, Any] = {}
    while True:
        draft = run.human("draft_campaign", round=round, context=context)
        check = run.auto(
            "price_policy_check",
            price_policy_check,
            run.instance_id,
            round,
            draft.data["skus"],
            draft.data["budget"],
            {"price_policy": run.rule("price_policy"), "owner_approval_above": run.rule("owner_approval_above")},
            perks_of(draft.data),
            round=round,
        )
        if check.get("refused") or check.get("perk_findings"):
            # The red line, an unknown SKU, or a perk that does not fit: refused outright, back to the draft.
            context = {"rework": _refusal(check, round), "previous_draft": draft.data, "price_check": check}
            round += 1
            continue
        review = {"campaign": draft.data, "drafted_by": draft.by, "price_check": check}
        approvals: dict[str, Any] = {}
        if check["needs_owner"]:
            decision = run.approval("owner_price_approval", round=round, context=review)
            reason = _owner_reason(decision)
            if decision.approved and check.get("deviations") and not reason:
                rework = {"round": round, "by": decision.by, "comment": "a price below the list price needs a reason"}
                context = {"rework": rework, "previous_draft": draft.data, "price_check": check}
                round += 1
                continue
            if not decision.approved:
                context = {"rework": _rework(decision, round), "previous_draft": draft.data, "price_check": check}
                round += 1
                continue
            approvals["owner"] = decision.by
            if check.get("deviations"):
                run.auto(
                    "record_deviations",
                    record_owner_deviations,
                    run.instance_id,
                    check["deviations"],
                    reason,
                    decision.by,
                    round=round,
                )
                approvals["price_reason"] = reason
        decision = run.approval(
            "campaign_approval", round=round, context={**review, "owner_approved_by": approvals.get("owner")}
        )
        if decision.approved:
            approvals["operations"] = decision.by
            return draft, approvals, round
        context = {"rework": _rework(decision, round), "previous_draft": draft.data, "price_check": check}
        round += 1


@process_flow(PROCESS, written_for={1, 2})
def themed_campaign_plan(run: ProcessRun) -> dict[str, Any]:
    """主题营销方案制定流程: draft, price policy, owner and operations approval, creatives and ads."""
    draft, approvals, rounds = _campaign_until_approved(run)
    campaign = draft.data
    saved = run.auto("save_campaign", save_campaign, run.instance_id, campaign, approvals)
    promo_images = [
        run.child(
            "promo_images",
            index=index,
            process_key="promo_image_design",
            params={
                "campaign": campaign["theme"],
                **{f: creative[f] for f in CREATIVE_FIELDS if creative.get(f) is not None},
            },
        )
        for index, creative in enumerate(campaign.get("creatives") or [])
    ]
    ads = run.child(
        "ads_and_events",
        index=0,
        process_key="ads_and_events",
        params={
            "campaign": campaign["theme"],
            "skus": [line["sku"] for line in campaign["skus"]],
            "budget": campaign["budget"],
        },
    )
    return run.finish(
        "approved",
        campaign_id=saved["campaign_id"],
        rounds=rounds,
        approvals=approvals,
        promo_images=promo_images,
        ads_and_events=ads,
    )
