"""The price rule on master data: online prices judged against each SKU's list price, perks checked.

Campaign prices (themed_campaign_plan), event prices 活动价 (ads_and_events) and listing prices
(listing_upload) all go through judge_lines. A deviation the owner approved is recorded with its reason
(record_deviations); a listing price at or above an approved deviation's price passes.
Perks (free shipping, a gift SKU taken from stock, coupons / 满减 within the budget) are checked by check_perks.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import Campaign, PriceDeviation
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.rules.price_policy import DEVIATION, OK, REFUSED, PriceRule, PriceVerdict, judge_price, to_decimal
from ecomflow.engine.shop.catalog import priced_variants
from ecomflow.engine.shop.stock import ONLINE_WAREHOUSE, available_by_sku, move


def judge_lines(
    session: Session, lines: Sequence[tuple[str, Any]], rule: PriceRule, *, honour_approved: bool = False
) -> list[PriceVerdict]:
    """Judge each (sku, online price) against the catalogue, in input order.

    With honour_approved, a deviation at or above a price the owner approved for that SKU counts as ok.
    """
    known = priced_variants(session, [sku for sku, _ in lines])
    verdicts = []
    for sku, price in lines:
        variant = known.get(sku)
        verdict = judge_price(
            sku=sku,
            price=price,
            list_price=variant.list_price if variant else None,
            online_only=variant.online_only if variant else False,
            rule=rule,
        )
        if honour_approved and verdict.verdict == DEVIATION:
            approved = approved_deviation(session, sku=sku, price=verdict.price)
            if approved is not None:
                verdict = PriceVerdict(
                    sku,
                    verdict.price,
                    verdict.list_price,
                    verdict.gap,
                    OK,
                    f"SKU {sku}: price {verdict.price} is covered by the deviation to {approved.price} "
                    f"the owner ({approved.approved_by}) approved in {approved.process_key}: {approved.reason}",
                )
        verdicts.append(verdict)
    return verdicts


def approved_deviation(session: Session, *, sku: str, price: Decimal) -> PriceDeviation | None:
    """Return an owner-approved deviation of the SKU at or below this price, the lowest first."""
    return session.scalar(
        select(PriceDeviation)
        .where(PriceDeviation.sku == sku, PriceDeviation.price <= price)
        .order_by(PriceDeviation.price, PriceDeviation.id)
        .limit(1)
    )


def record_deviations(
    session: Session,
    *,
    verdicts: Sequence[dict[str, Any]],
    reason: str,
    approved_by: str,
    instance_id: str,
    process_key: str,
) -> list[dict[str, Any]]:
    """Record the deviations among the verdict rows as approved by the owner with the reason, once per instance."""
    recorded = []
    for row in verdicts:
        if row["verdict"] != DEVIATION:
            continue
        held = session.scalar(
            select(PriceDeviation).where(PriceDeviation.instance_id == instance_id, PriceDeviation.sku == row["sku"])
        )
        if held is None:
            session.add(
                PriceDeviation(
                    sku=row["sku"],
                    price=to_decimal(row["price"]),
                    list_price=to_decimal(row["list_price"]),
                    reason=reason,
                    approved_by=approved_by,
                    instance_id=instance_id,
                    process_key=process_key,
                    approved_at=utcnow(),
                )
            )
            recorded.append({"sku": row["sku"], "price": row["price"], "list_price": row["list_price"]})
    if recorded:
        session.flush()
        record_event(
            session,
            type="price.deviation_approved",
            actor=approved_by,
            instance_id=instance_id,
            data={"deviations": recorded, "reason": reason, "process": process_key},
        )
    return recorded


def perks_of(data: dict[str, Any]) -> dict[str, Any]:
    """Return the perks of a campaign or event form, normalised (missing ones empty)."""
    perks = data.get("perks") or {}
    gift = perks.get("gift") or {}
    return {
        "free_shipping": bool(perks.get("free_shipping")),
        "gift": {"sku": gift["sku"], "quantity": int(gift.get("quantity") or 1)} if gift.get("sku") else None,
        "coupons": [
            {
                "threshold": str(to_decimal(c.get("threshold") or 0)),
                "amount": str(to_decimal(c["amount"])),
                "expected_uses": int(c.get("expected_uses") or 0),
            }
            for c in perks.get("coupons") or []
        ],
    }


def check_perks(session: Session, perks: dict[str, Any], *, budget: Any) -> list[dict[str, str]]:
    """Return the findings about perks: an unknown or short gift SKU, coupons costing more than the budget."""
    findings = []
    gift = perks.get("gift")
    if gift:
        known = priced_variants(session, [gift["sku"]])
        if gift["sku"] not in known:
            findings.append(
                {
                    "field": "perks.gift.sku",
                    "rule": "catalogue_sku",
                    "message": f"gift {gift['sku']} is not in the catalogue",
                }
            )
        else:
            available = available_by_sku(session, [gift["sku"]], location=ONLINE_WAREHOUSE).get(gift["sku"], 0)
            if available < gift["quantity"]:
                findings.append(
                    {
                        "field": "perks.gift.quantity",
                        "rule": "gift_stock",
                        "message": f"gift {gift['sku']}: {gift['quantity']} wanted, "
                        f"{available} available at {ONLINE_WAREHOUSE}",
                    }
                )
    cost = sum((to_decimal(c["amount"]) * c["expected_uses"] for c in perks.get("coupons", [])), Decimal(0))
    if cost > to_decimal(budget):
        findings.append(
            {
                "field": "perks.coupons",
                "rule": "within_budget",
                "message": f"coupons cost {cost} (amount × expected uses), more than the budget {to_decimal(budget)}",
            }
        )
    for index, coupon in enumerate(perks.get("coupons", [])):
        if to_decimal(coupon["amount"]) >= to_decimal(coupon["threshold"]) > 0:
            findings.append(
                {
                    "field": f"perks.coupons[{index}].amount",
                    "rule": "below_threshold",
                    "message": f"a 满减 of {coupon['amount']} off {coupon['threshold']} gives the goods away",
                }
            )
    return findings


def take_gift_stock(
    session: Session, *, perks: dict[str, Any], key: str, actor: str, instance_id: str
) -> dict[str, Any] | None:
    """Reserve the gift's units at the online warehouse, once per key; None without a gift."""
    gift = perks.get("gift")
    if not gift:
        return None
    moved = move(
        session,
        kind="reserve",
        sku=gift["sku"],
        location=ONLINE_WAREHOUSE,
        quantity=gift["quantity"],
        business_key=key,
        actor=actor,
        instance_id=instance_id,
    )
    return {
        "sku": gift["sku"],
        "quantity": gift["quantity"],
        "location": ONLINE_WAREHOUSE,
        "movement_id": moved.movement.id,
    }


def summarise(verdicts: Sequence[PriceVerdict], rule: PriceRule) -> dict[str, Any]:
    """Return the verdict rows and the SKUs refused and deviating."""
    rows = [v.row(policy=rule.policy) for v in verdicts]
    return {
        "rows": rows,
        "refused": [r for r in rows if r["verdict"] == REFUSED],
        "deviations": [r for r in rows if r["verdict"] == DEVIATION],
    }


def campaigns_with(session: Session, skus: Sequence[str]) -> list[dict[str, Any]]:
    """Return the approved campaigns and events whose SKU lines name any of the SKUs, newest first."""
    wanted = set(skus)
    found = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id.desc())):
        lines = [line for line in (campaign.details or {}).get("skus") or [] if line.get("sku") in wanted]
        if lines:
            found.append(
                {
                    "campaign_id": campaign.id,
                    "instance_id": campaign.instance_id,
                    "kind": (campaign.details or {}).get("kind", "campaign"),
                    "theme": campaign.theme,
                    "starts_on": campaign.starts_on,
                    "ends_on": campaign.ends_on,
                    "lines": lines,
                    "perks": (campaign.details or {}).get("perks") or perks_of({}),
                }
            )
    return found


def listing_perks(session: Session, skus: Sequence[str]) -> list[dict[str, Any]]:
    """Return the perks a listing of these SKUs carries: those of each campaign or event they are in."""
    return [
        {"source": c["kind"], "campaign_id": c["campaign_id"], "theme": c["theme"], **c["perks"]}
        for c in campaigns_with(session, skus)
        if c["perks"]["free_shipping"] or c["perks"]["gift"] or c["perks"]["coupons"]
    ]
