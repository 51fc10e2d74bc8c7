"""宝贝上传流程 — listing upload, process 12 of PROCESSES.md."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from prefect import task

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.rules.listing import Finding, check_listing
from ecomflow.engine.rules.price_policy import DEVIATION, REFUSED, PriceRule
from ecomflow.engine.shop.catalog import priced_variants
from ecomflow.engine.shop.listing_exports import BULK_UPLOAD_FILES, write_listing_files
from ecomflow.engine.shop.pricing import judge_lines, listing_perks
from ecomflow.engine.shop.publishing import CatalogChannel, publish_once
from ecomflow.engine.shop.variant_listings import ListedVariant, record_variant_listings, stock_findings
from ecomflow.flows.artifacts import publish_markdown, publish_table
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow
from ecomflow.flows.slots import in_peak_hours, slot_time

PROCESS = "listing_upload"


def listing_prices(listing: dict[str, Any], list_prices: dict[str, Any]) -> list[tuple[str, Any]]:
    """Return each SKU row's online price: its own, else the listing's, else its list price in master data."""
    lines = []
    for row in listing["skus"]:
        price = row.get("price") or listing.get("price") or list_prices.get(row["sku"])
        lines.append((row["sku"], price if price is not None else 0.01))
    return lines


def _price_findings(
    session: Any, listing: dict[str, Any], rules: dict[str, Any]
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Judge each SKU row's price against its list price; an owner-approved campaign or event price passes."""
    rule = PriceRule.of(rules)
    known = priced_variants(session, [row["sku"] for row in listing["skus"]])
    lines = listing_prices(listing, {sku: v.list_price for sku, v in known.items()})
    verdicts = judge_lines(session, lines, rule, honour_approved=True)
    findings = []
    for index, verdict in enumerate(verdicts):
        if verdict.verdict == REFUSED:
            findings.append(Finding(field=f"skus[{index}].price", rule="red_line", message=verdict.message))
        elif verdict.verdict == DEVIATION:
            message = f"{verdict.message}: no campaign or event price the owner approved covers it"
            findings.append(Finding(field=f"skus[{index}].price", rule="price_deviation", message=message))
    return findings, [v.row(policy=rule.policy) for v in verdicts]


@task
def listing_check(instance_id: str, listing: dict[str, Any], round: int, rules: dict[str, Any]) -> dict[str, Any]:
    """Check title bytes, advertising law, price policy and main images; publish the findings as an artifact."""
    with session_scope() as session:
        business_key = get_instance(session, instance_id).business_key
        price_findings, prices = _price_findings(session, listing, rules["price_policy"])
        # Version 2 writes each SKU's stock to master data on publish: it may not list more than is there.
        stock_rows = stock_findings(session, listing["skus"]) if "dispatch_within_hours" in listing else []
    findings = (
        check_listing(
            title=listing["title"],
            main_images=listing["main_images"],
            texts={"skus": [{"spec": row.get("spec") or ""} for row in listing["skus"]]},
            title_max_bytes=int(rules["listing"]["title_max_bytes"]),
            min_main_images=int(rules["listing"]["min_main_images"]),
            banned=rules["banned_terms"],
        )
        + price_findings
    )
    rows = [{"field": f.field, "rule": f.rule, "message": f.message} for f in findings] + stock_rows
    key = f"{PROCESS}-{business_key}-listing-check"
    if rows:
        publish_table(key, rows, description=f"宝贝上传检查 {business_key} round {round}: {len(rows)} findings")
    else:
        publish_markdown(
            key,
            f"# 宝贝上传检查 {business_key}\n\nRound {round}: all checks passed.",
            description=f"宝贝上传检查 {business_key} round {round}: passed",
        )
    slot = slot_time(listing["go_live_at"])
    peak = in_peak_hours(slot, peak_hours=rules["peak_hours"])
    return {"findings": rows, "prices": prices, "go_live_at": slot.isoformat(), "in_peak_hours": peak}


@task
def publish_listing(instance_id: str, sku: str, listing: dict[str, Any], module: str | None) -> dict[str, Any]:
    """Put the listing into the catalog, once."""
    with session_scope() as session:
        # The perks of the campaigns and events its SKUs are in go live with the listing.
        content = {
            **listing,
            "module": module,
            "perks": listing_perks(session, [row["sku"] for row in listing["skus"]]),
        }
        entry = publish_once(
            session, channel=CatalogChannel(), instance_id=instance_id, kind="listing", ref=sku, content=content
        )
        published = {
            "catalog_id": entry.id,
            "channel_ref": entry.channel_ref,
            "published_at": entry.published_at.isoformat(),
        }
        list_prices = {
            sku: v.list_price for sku, v in priced_variants(session, [r["sku"] for r in listing["skus"]]).items()
        }
        prices = dict(listing_prices(listing, list_prices))
        if "dispatch_within_hours" in listing:
            published["variants"] = _write_variants(session, instance_id, listing)
        # The platforms' bulk-upload files (淘宝助理 CSV, JD XLSX), offered on the verify task and the instance page.
        published[BULK_UPLOAD_FILES] = write_listing_files(
            session,
            instance_id=instance_id,
            listing=listing,
            code=sku,
            prices=prices,
            timezone=get_definitions().timezone,
        )
        return published


def _write_variants(session: Any, instance_id: str, listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Write each SKU row's online price (its own, the listing's or the list price) and stock into master data."""
    list_prices = {
        sku: v.list_price for sku, v in priced_variants(session, [r["sku"] for r in listing["skus"]]).items()
    }
    stocks = {row["sku"]: int(row["stock"]) for row in listing["skus"]}
    written = record_variant_listings(
        session,
        instance_id=instance_id,
        title=listing["title"],
        variants=[
            ListedVariant(sku=sku, online_price=Decimal(str(price)), listed_stock=stocks[sku])
            for sku, price in listing_prices(listing, list_prices)
        ],
        shipping_template=listing["shipping_template"],
        dispatch_within_hours=int(listing["dispatch_within_hours"]),
        actor=SYSTEM_ACTOR,
    )
    return {row.sku: {"online_price": str(row.online_price), "stock": row.listed_stock} for row in written}


def _prepare_until_approved(run: ProcessRun) -> tuple[StepOutcome, dict[str, Any]]:
    """Prepare the listing until it passes the check and operations approves; each loop is one round."""
    base = {
        "sku": run.params.get("sku"),
        "product": run.params.get("product"),
        "skus": run.params.get("skus") or [],
        "module": run.params.get("module"),
        "module_images": run.params.get("module_images") or [],
    }
    context: dict[str, Any] = base
    round = 1
    while True:
        listing = run.human("prepare_listing", round=round, context=context)
        rules = {name: run.rule(name) for name in ("listing", "banned_terms", "price_policy")}
        rules["peak_hours"] = run.rule("peak_hours", [])
        check = run.auto("listing_check", listing_check, run.instance_id, listing.data, round, rules, round=round)
        if check["findings"]:
            context = {**base, "findings": check["findings"], "rework": {"round": round, "step": "listing_check"}}
            round = run.next_round("prepare_listing", round)
            continue
        review = run.approval(
            "review",
            round=round,
            context={
                "listing": listing.data,
                "prepared_by": listing.by,
                "prices": check["prices"],
                "go_live_at": check["go_live_at"],
                "in_peak_hours": check["in_peak_hours"],
            },
        )
        if review.approved:
            return listing, check
        context = {**base, "rework": {"round": round, "step": "review", "comment": review.comment, "by": review.by}}
        round = run.next_round("prepare_listing", round)


@process_flow(PROCESS, written_for={1, 2})
def listing_upload(run: ProcessRun) -> dict[str, Any]:
    """宝贝上传流程: prepare, check, review, go live at the slot, publish, verify."""
    listing, check = _prepare_until_approved(run)
    run.wait_until("go_live", datetime.fromisoformat(check["go_live_at"]))
    sku = run.params.get("sku") or listing.data["skus"][0]["sku"]
    # One listing per product: the catalog entry is the product's when the module named one.
    ref = run.params.get("product") or sku
    published = run.auto("publish", publish_listing, run.instance_id, ref, listing.data, run.params.get("module"))
    verify = run.human("verify_live", context={"sku": sku, "title": listing.data["title"], "catalog": published})
    outcome = "live" if verify.data["result"] == "ok" else "live_with_problem"
    return run.finish(outcome, sku=sku, catalog=published, verify=verify.data)
