"""宝贝模块制作业务流程 — listing module production, process 3 of PROCESSES.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.design_archive import archive_creative
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.rules.ad_law import scan_form_text
from ecomflow.engine.shop.publishing import CatalogChannel, publish_once
from ecomflow.flows.artifacts import publish_table
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "listing_module_production"
# The customer-facing text of the selling-points form; specs are product facts, audience is internal.
CUSTOMER_FACING = ("selling_points",)


@task
def copy_check(instance_id: str, points: dict[str, Any], round: int, banned: list[str]) -> dict[str, Any]:
    """Find every banned absolute term in the selling points, and where; publish the hits as an artifact."""
    hits = scan_form_text(points, fields=CUSTOMER_FACING, banned=banned)
    findings = [
        {"field": hit.field, "rule": "ad_law", "term": hit.term, "position": hit.position, "message": hit.message}
        for hit in hits
    ]
    if findings:
        with session_scope() as session:
            business_key = get_instance(session, instance_id).business_key
        publish_table(
            f"{PROCESS}-{business_key}-copy-check",
            findings,
            description=f"广告法极限词 {business_key} round {round}: {len(findings)} hits",
        )
    return {"findings": findings}


@task
def archive_module(instance_id: str, ref: str, content: dict[str, Any]) -> dict[str, Any]:
    """Archive the approved module (ref: its product, else its SKU) in the catalog and the design archive, once."""
    with session_scope() as session:
        archive_creative(
            session,
            instance_id=instance_id,
            process_key=PROCESS,
            title=f"宝贝模块 {ref}",
            skus=content.get("skus") or ([ref] if ref else []),
            attachment_ids=content["design"]["preview_images"],
            approved_by=content["approved_by"] or SYSTEM_ACTOR,
            approved_at=datetime.fromisoformat(content["approved_at"]),
        )
        entry = publish_once(
            session, channel=CatalogChannel(), instance_id=instance_id, kind="listing_module", ref=ref, content=content
        )
        return {"catalog_id": entry.id, "module": entry.channel_ref}


def _write_until_clean(run: ProcessRun, base: dict[str, Any]) -> StepOutcome:
    """Write the selling points until the advertising-law check finds nothing; each hit is one more round."""
    context = base
    round = 1
    while True:
        points = run.human("write_selling_points", round=round, context=context)
        banned = run.rule("banned_terms")
        check = run.auto("copy_check", copy_check, run.instance_id, points.data, round, banned, round=round)
        if not check["findings"]:
            return points
        context = {**base, "findings": check["findings"], "rework": {"round": round, "step": "copy_check"}}
        round = run.next_round("write_selling_points", round)


def _design_until_approved(run: ProcessRun, base: dict[str, Any]) -> tuple[StepOutcome, StepOutcome]:
    """Design the module until operations approves it; a reject sends it back with the comment."""
    context = base
    round = 1
    while True:
        design = run.human("design_module", round=round, context=context)
        review = run.approval(
            "review_module", round=round, context={**base, "design": design.data, "designed_by": design.by}
        )
        if review.approved:
            return design, review
        context = {**base, "rework": {"round": round, "comment": review.comment, "by": review.by}}
        round = run.next_round("design_module", round)


@process_flow(PROCESS, written_for={1, 2})
def listing_module_production(run: ProcessRun) -> dict[str, Any]:
    """宝贝模块制作业务流程: selling points, advertising-law check, design, review, archive, upload; one per product."""
    photo_archive = run.params.get("photo_archive")
    photos = run.params.get("photos") or []
    # Version 2: one module per product (its variants together); a one-SKU start (version 1) names the SKU.
    product, skus = run.params.get("product"), list(run.params.get("skus") or [])
    first = {"sku": run.params.get("sku") or (skus[0] if skus else None), "product": product, "skus": skus}
    points = _write_until_clean(run, {**first, "photo_archive": photo_archive})
    sku = first["sku"] or points.data["sku"]
    skus = skus or [sku]
    design, review = _design_until_approved(
        run,
        {
            "sku": sku,
            "product": product,
            "skus": skus,
            "photo_archive": photo_archive,
            "photos": photos,
            "selling_points": points.data,
        },
    )
    content = {
        "product": product,
        "skus": skus,
        "sku": sku,
        "photo_archive": photo_archive,
        "selling_points": points.data["selling_points"],
        "specs": points.data["specs"],
        "audience": points.data["audience"],
        "design": design.data,
        "approved_by": review.by,
        "approved_at": (review.at or utcnow()).isoformat(),
    }
    archived = run.auto("archive", archive_module, run.instance_id, product or sku, content)
    upload = run.child(
        "listing_upload",
        index=0,
        process_key="listing_upload",
        params={
            "sku": sku,
            **({"product": product, "skus": skus} if product else {}),
            "module": archived["module"],
            "module_images": design.data["preview_images"],
        },
    )
    return run.finish("archived", sku=sku, product=product, skus=skus, module=archived["module"], listing_upload=upload)
