"""首页设计/宝贝详情模块设计流程 — homepage and detail page design, process 5 of PROCESSES.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.design_archive import archive_creative
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.shop.publishing import CatalogChannel, publish_once
from ecomflow.flows.copy_checks import ad_law_check, has_step
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow
from ecomflow.flows.slots import in_peak_hours, slot_time

PROCESS = "page_design"
MISSING_SKU = {"field": "sku", "rule": "required_for_detail", "message": "a detail page needs the SKU it describes"}


@task
def publish_page(instance_id: str, page: str, sku: str | None, content: dict[str, Any]) -> dict[str, Any]:
    """Publish the page to the shop, once: the homepage, or the SKU's detail page; file it in the design archive."""
    kind, ref = ("homepage", "homepage") if page == "homepage" else ("detail_page", sku or "")
    with session_scope() as session:
        archive_creative(
            session,
            instance_id=instance_id,
            process_key=PROCESS,
            title="首页" if page == "homepage" else f"详情页 {sku}",
            skus=[sku] if sku else [],
            attachment_ids=content["design"]["previews"],
            approved_by=content.get("approved_by") or SYSTEM_ACTOR,
            approved_at=datetime.fromisoformat(content.get("approved_at") or utcnow().isoformat()),
        )
        entry = publish_once(
            session, channel=CatalogChannel(), instance_id=instance_id, kind=kind, ref=ref, content=content
        )
        return {
            "catalog_id": entry.id,
            "kind": kind,
            "channel_ref": entry.channel_ref,
            "published_at": entry.published_at.isoformat(),
        }


def _brief_until_complete(run: ProcessRun) -> tuple[StepOutcome, str | None]:
    """Take the brief; a detail page without its SKU, or page copy with a banned term, goes back to the author."""
    context: dict[str, Any] = {}
    round = 1
    while True:
        brief = run.human("brief", round=round, context=context)
        sku = brief.data.get("sku") or run.params.get("sku")
        findings = [] if brief.data["page"] == "homepage" or sku else [MISSING_SKU]
        if has_step(run, "copy_check"):
            banned = run.rule("banned_terms")
            findings += run.auto("copy_check", ad_law_check, brief.data, ["key_message"], banned, round=round)[
                "findings"
            ]
        if not findings:
            return brief, sku
        context = {"findings": findings, "rework": {"round": round, "step": "brief"}}
        round = run.next_round("brief", round)


def _design_until_approved(run: ProcessRun, base: dict[str, Any], *, homepage: bool) -> tuple[StepOutcome, StepOutcome]:
    """Design until operations (and, for the homepage, the owner) approves; a reject returns to design."""
    context = base
    round = 1
    while True:
        design = run.human("design", round=round, context=context)
        decision_context = {**base, "design": design.data, "designed_by": design.by}
        review = run.approval("review", round=round, context=decision_context)
        decision, step = review, "review"
        if review.approved and homepage:
            step = "owner_signoff"
            decision = run.approval(
                step,
                round=round,
                context={
                    **decision_context,
                    "review": {"by": review.by, "comment": review.comment},
                },
            )
        if decision.approved:
            return design, decision
        context = {**base, "rework": {"round": round, "step": step, "comment": decision.comment, "by": decision.by}}
        round = run.next_round("design", round)


@process_flow(PROCESS, written_for={1, 2})
def page_design(run: ProcessRun) -> dict[str, Any]:
    """首页设计/宝贝详情模块设计流程: brief, design, review, owner sign-off (homepage), go live, publish."""
    brief, sku = _brief_until_complete(run)
    page = brief.data["page"]
    go_live_at = slot_time(brief.data["go_live_at"])
    base = {
        "brief": brief.data,
        "sku": sku,
        "go_live_at": go_live_at.isoformat(),
        "in_peak_hours": in_peak_hours(go_live_at, peak_hours=run.rule("peak_hours", [])),
    }
    design, approval = _design_until_approved(run, base, homepage=page == "homepage")
    run.wait_until("go_live", go_live_at)
    content = {
        "page": page,
        "sku": sku,
        "brief": brief.data,
        "design": design.data,
        "approved_by": approval.by,
        "approved_at": (approval.at or utcnow()).isoformat(),
    }
    published = run.auto("publish", publish_page, run.instance_id, page, sku, content)
    return run.finish("published", page=page, sku=sku, catalog=published)
