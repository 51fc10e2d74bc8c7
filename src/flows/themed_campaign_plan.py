"""主题营销方案制定流程 — the themed campaign plan, process 2 of PROCESSES.md.

Price policy: a SKU known to the inventory is judged by its own policy (unified or flexible);
an unknown SKU by rules.price_policy.default. The allowed discount is rules.price_policy.max_online_discount.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.rules.budget import approver_role
from ecomflow.engine.rules.price_policy import PriceLine, check_prices, price_table
from ecomflow.engine.shop.inventory import get_skus
from ecomflow.engine.shop.process_records import save_campaign as record_campaign
from ecomflow.flows.artifacts import publish_table
from ecomflow.flows.copy_checks import ad_law_check, has_step
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "themed_campaign_plan"
CREATIVE_FIELDS = ("purpose", "sizes", "copy", "deadline")


@task
def price_policy_check(
    instance_id: str, round: int, skus: list[dict[str, Any]], budget: float, rules: dict[str, Any]
) -> dict[str, Any]:
    """Judge every SKU's promo price against its channel price policy, and who must approve the budget."""
    default, maximum = rules["price_policy"]["default"], rules["price_policy"]["max_online_discount"]
    with session_scope() as session:
        policies = {code: sku.price_policy for code, sku in get_skus(session, [line["sku"] for line in skus]).items()}
        business_key = get_instance(session, instance_id).business_key
    rows, violations = [], []
    for line in skus:
        policy = policies.get(line["sku"], default)
        price = PriceLine(sku=line["sku"], online_price=line["online_price"], offline_price=line["offline_price"])
        rows += [{**row, "policy": policy} for row in price_table([price], policy=policy, max_online_discount=maximum)]
        violations += [
            {
                "sku": v.sku,
                "policy": policy,
                "discount": str(v.discount),
                "allowed": str(v.allowed),
                "message": v.message,
            }
            for v in check_prices([price], policy=policy, max_online_discount=maximum)
        ]
    budget_approver = approver_role(budget, owner_above=rules["owner_approval_above"])
    publish_table(
        f"{PROCESS}-{business_key}-price-policy-round-{round}",
        rows,
        description=f"Channel price policy check, round {round} (同一定价，灵活促销)",
    )
    return {
        "rows": rows,
        "violations": violations,
        "budget": str(budget),
        "budget_approver": budget_approver,
        "needs_owner": bool(violations) or budget_approver == "owner",
    }


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
            details={**details, "approvals": approvals},
        )
        session.flush()
        return {"campaign_id": row.id}


def _rework(decision: StepOutcome, round: int) -> dict[str, Any]:
    return {"round": round, "comment": decision.comment, "by": decision.by}


def _campaign_until_approved(run: ProcessRun) -> tuple[StepOutcome, dict[str, Any], int]:
    """Draft, check and approve the campaign; any reject sends it back to the draft, round+1."""
    round = 1
    context: dict[str, Any] = {}
    while True:
        draft = run.human("draft_campaign", round=round, context=context)
        if has_step(run, "copy_check"):
            fields, banned = ["theme", "creatives.copy"], run.rule("banned_terms")
            copy = run.auto("copy_check", ad_law_check, draft.data, fields, banned, round=round)
            if copy["findings"]:
                context = {
                    "findings": copy["findings"],
                    "rework": {"round": round, "step": "copy_check"},
                    "previous_draft": draft.data,
                }
                round = run.next_round("draft_campaign", round)
                continue
        check = run.auto(
            "price_policy_check",
            price_policy_check,
            run.instance_id,
            round,
            draft.data["skus"],
            draft.data["budget"],
            {"price_policy": run.rule("price_policy"), "owner_approval_above": run.rule("owner_approval_above")},
            round=round,
        )
        review = {"campaign": draft.data, "drafted_by": draft.by, "price_check": check}
        approvals: dict[str, Any] = {}
        if check["needs_owner"]:
            decision = run.approval("owner_price_approval", round=round, context=review)
            if not decision.approved:
                context = {"rework": _rework(decision, round), "previous_draft": draft.data, "price_check": check}
                round = run.next_round("draft_campaign", round)
                continue
            approvals["owner"] = decision.by
        decision = run.approval(
            "campaign_approval", round=round, context={**review, "owner_approved_by": approvals.get("owner")}
        )
        if decision.approved:
            approvals["operations"] = decision.by
            return draft, approvals, round
        context = {"rework": _rework(decision, round), "previous_draft": draft.data, "price_check": check}
        round = run.next_round("draft_campaign", round)


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
