"""促销图片设计流程 — promo image design, process 6 of PROCESSES.md.

The images go live when promotion approves them; the performance feedback task opens then,
due 7 days later, and an "optimize" verdict sends the images back to design (根据数据反馈优化图片).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.files.design_archive import archive_creative
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.rules.ad_law import scan_form_text
from ecomflow.engine.shop.publishing import CatalogChannel, publish_once
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

PROCESS = "promo_image_design"
CUSTOMER_FACING = ("copy",)
# What the performance feedback recorded, shown with the creative in the gallery.
FIGURES = ("impressions", "clicks", "click_through_rate", "verdict")


@task
def copy_check(request: dict[str, Any], banned: list[str]) -> dict[str, Any]:
    """Check the copy printed on the images against the advertising law; return every term and where."""
    hits = scan_form_text(request, fields=CUSTOMER_FACING, banned=banned)
    findings = [
        {"field": hit.field, "rule": "ad_law", "term": hit.term, "position": hit.position, "message": hit.message}
        for hit in hits
    ]
    return {"passed": not findings, "findings": findings}


@task
def archive(
    instance_id: str,
    request: dict[str, Any],
    images: dict[str, Any],
    feedback: dict[str, Any],
    approval: dict[str, str] | None = None,
) -> dict[str, Any]:
    """File the finished work (完成作品建档) in the catalog and the design archive's gallery, once per instance."""
    content = {"request": request, "images": images, "feedback": feedback}
    approval = approval or {"by": SYSTEM_ACTOR, "at": utcnow().isoformat()}
    with session_scope() as session:
        archive_creative(
            session,
            instance_id=instance_id,
            process_key=PROCESS,
            title=request.get("purpose") or request["campaign"],
            campaign=request["campaign"],
            skus=request.get("skus") or [],
            attachment_ids=[row["image"] for row in images.get("images", [])],
            figures={key: feedback[key] for key in FIGURES if key in feedback},
            ad_creative_id=feedback.get("ad_creative_id") or None,
            approved_by=approval["by"],
            approved_at=datetime.fromisoformat(approval["at"]),
        )
        entry = publish_once(
            session,
            channel=CatalogChannel(),
            instance_id=instance_id,
            kind="promo_image",
            ref=instance_id,
            content=content,
        )
        session.flush()
        return {"catalog_id": entry.id, "channel_ref": entry.channel_ref}


def _request_until_clean(run: ProcessRun) -> StepOutcome:
    """Take the request until its copy passes the advertising-law check; a hit goes back to the requester."""
    round = 1
    context: dict[str, Any] = {}
    while True:
        request = run.human("request", round=round, context=context)
        check = run.auto("copy_check", copy_check, request.data, run.rule("banned_terms"), round=round)
        if check["passed"]:
            return request
        context = {"findings": check["findings"], "previous_request": request.data}
        round = run.next_round("request", round)


def _design_until_approved(
    run: ProcessRun, round: int, context: dict[str, Any]
) -> tuple[StepOutcome, StepOutcome, int]:
    """Design until promotion approves the images; a reject goes back to design with the comment, round+1."""
    while True:
        design = run.human("design", round=round, context=context)
        decision = run.approval(
            "review", round=round, context={**context, "design": design.data, "designed_by": design.by}
        )
        if decision.approved:
            return design, decision, round
        context = {
            **context,
            "rework": {"round": round, "comment": decision.comment, "by": decision.by},
            "previous_design": design.data,
        }
        round = run.next_round("design", round)


@process_flow(PROCESS, written_for={1, 2})
def promo_image_design(run: ProcessRun) -> dict[str, Any]:
    """促销图片设计流程: request, advertising-law check, design, review, data feedback, archive."""
    request = _request_until_clean(run)
    round, context = 1, {"request": request.data}
    while True:
        design, review, round = _design_until_approved(run, round, context)
        # The review approval is the go-live; the feedback task, opened now, is due 7 days later.
        feedback = run.human(
            "performance_feedback",
            round=round,
            context={"request": request.data, "design": design.data, "live_since": review.at.isoformat()},
        )
        if feedback.data["verdict"] == "keep":
            break
        context = {
            "request": request.data,
            "feedback": {"round": round, "by": feedback.by, **feedback.data},
            "previous_design": design.data,
        }
        round = run.next_round("design", round)
    approval = {"by": review.by or SYSTEM_ACTOR, "at": (review.at or utcnow()).isoformat()}
    archived = run.auto("archive", archive, run.instance_id, request.data, design.data, feedback.data, approval)
    return run.finish(
        "archived",
        rounds=round,
        catalog_id=archived["catalog_id"],
        click_through_rate=feedback.data["click_through_rate"],
    )
