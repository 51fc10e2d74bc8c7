"""商品拍摄流程 — product photo shoot, process 11 of PROCESSES.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.design_archive import archive_creative
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.shop.publishing import CatalogChannel, publish_once
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "product_photo_shoot"


@task
def archive_photos(instance_id: str, content: dict[str, Any]) -> dict[str, Any]:
    """Archive the approved photo set in the catalog and the design archive's gallery, once (完成作品建档)."""
    with session_scope() as session:
        archive_creative(
            session,
            instance_id=instance_id,
            process_key=PROCESS,
            title=f"商品拍摄 {', '.join(product['product'] for product in content['products'])}",
            skus=content["skus"],
            attachment_ids=[*content["main_images"], *content["final_photos"]],
            approved_by=content["approved_by"] or SYSTEM_ACTOR,
            approved_at=datetime.fromisoformat(content["approved_at"]),
        )
        entry = publish_once(
            session,
            channel=CatalogChannel(),
            instance_id=instance_id,
            kind="photo_set",
            ref=instance_id,
            content=content,
        )
        return {"catalog_id": entry.id, "photo_archive": entry.channel_ref}


def _shoot_until_approved(run: ProcessRun, base: dict[str, Any]) -> tuple[StepOutcome, StepOutcome, StepOutcome]:
    """Shoot and retouch until operations approves; a reject redoes the retouch, or the shoot, as the reviewer chose."""
    round = 1
    shoot = run.human("shoot", round=round, context=base)
    while True:
        retouch = run.human("retouch", round=round, context={**base, "shoot": shoot.data})
        review = run.approval(
            "review",
            round=round,
            context={
                **base,
                "shoot": shoot.data,
                "retouch": retouch.data,
                "retouched_by": retouch.by,
            },
        )
        if review.approved:
            return shoot, retouch, review
        redo = review.data.get("redo") or "retouch"
        rework = {"round": round, "comment": review.comment, "by": review.by, "redo": redo}
        round = run.next_round("retouch", round)
        if redo == "shoot":
            shoot = run.human("shoot", round=round, context={**base, "rework": rework})
        base = {**base, "rework": rework}


def products_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the shoot's products, each with its SKUs once; a product or SKU named twice counts once.

    Version 1 requests name SKUs only: each is its own product there (one module per SKU, as version 1 did).
    """
    named = request.get("products") or [{"product": sku, "skus": [sku]} for sku in request.get("skus") or []]
    products: dict[str, list[str]] = {}
    for entry in named:
        skus = products.setdefault(entry["product"], [])
        skus.extend(sku for sku in entry["skus"] if sku not in skus)
    return [{"product": product, "skus": skus} for product, skus in products.items()]


@process_flow(PROCESS, written_for={1, 2})
def product_photo_shoot(run: ProcessRun) -> dict[str, Any]:
    """商品拍摄流程: request, samples, shoot, retouch, review, return samples, archive, one module per product."""
    prefill = {"products": run.params["products"]} if run.params.get("products") else {}
    request = run.human("request", context=prefill or {"skus": run.params.get("skus") or []})
    handover = run.human("sample_handover", context={"request": request.data})
    shoot, retouch, review = _shoot_until_approved(run, {"request": request.data, "samples": handover.data})
    returned = run.human(
        "sample_return", context={"samples": handover.data, "main_images": retouch.data["main_images"]}
    )
    products = products_of(request.data)
    skus = list(dict.fromkeys(sku for product in products for sku in product["skus"]))
    archived = run.auto(
        "archive",
        archive_photos,
        run.instance_id,
        {
            "skus": skus,
            "shot_list": request.data["shot_list"],
            "style": request.data["style"],
            "raw_photos": shoot.data["raw_photos"],
            "main_images": retouch.data["main_images"],
            "final_photos": retouch.data["final_photos"],
            "main_video": retouch.data.get("main_video"),
            "products": products,
            "image_count": retouch.data["image_count"],
            "approved_by": review.by,
            "approved_at": (review.at or utcnow()).isoformat(),
        },
    )
    # Each listing module's designer gets the approved photos (the start form takes at most 100).
    photos = list(dict.fromkeys([*retouch.data["main_images"], *retouch.data["final_photos"]]))[:100]
    # One listing module (one 宝贝) per product, its variants together.
    modules = [
        run.child(
            "listing_modules",
            index=index,
            process_key="listing_module_production",
            params={
                "product": product["product"],
                "skus": product["skus"],
                "photo_archive": archived["photo_archive"],
                "photos": photos,
            },
        )
        for index, product in enumerate(products)
    ]
    return run.finish(
        "archived",
        photo_archive=archived["photo_archive"],
        listing_modules=modules,
        sample_condition=returned.data["condition"],
    )
