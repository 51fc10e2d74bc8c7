"""直通车，活动，钻展操作流程 — ads and events, process 8 of PROCESSES.md.

An event ends at the end of its last day (midnight after event_ends_on, calendar time zone);
the effect is tracked then, due 3 days later. The sweeper reminds about the review result daily.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.rules.budget import approver_role
from ecomflow.flows.primitives import InstanceEnded, ProcessRun, StepOutcome, mark_instance_failed, stop_ended_run

PROCESS = "ads_and_events"


def event_end(ends_on: str) -> datetime:
    """Return when an event whose last day is ends_on is over: the following local midnight."""
    last_day = date.fromisoformat(ends_on)
    return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=ZoneInfo(get_definitions().timezone))


def _selection_until_approved(run: ProcessRun) -> tuple[StepOutcome, StepOutcome, int]:
    """Select the products until the budget is approved, by operations or, above the threshold, the owner."""
    round = 1
    context: dict[str, Any] = {}
    while True:
        selection = run.human("select_products", round=round, context=context)
        approver = approver_role(selection.data["budget"], owner_above=get_definitions().rules["owner_approval_above"])
        step = "owner_budget_approval" if approver == "owner" else "budget_approval"
        decision = run.approval(step, round=round, context={"selection": selection.data, "selected_by": selection.by})
        if decision.approved:
            return selection, decision, round
        context = {"rework": {"round": round, "comment": decision.comment, "by": decision.by}, "previous_selection": selection.data}
        round += 1


def handle_event(run: ProcessRun) -> dict[str, Any]:
    """Run one ad or event sign-up from product selection to the effect analysis."""
    selection, budget, rounds = _selection_until_approved(run)
    sign_up = run.human("sign_up", context={"selection": selection.data, "budget_approved_by": budget.by})
    review = run.human("review_result", context={"selection": selection.data, "sign_up": sign_up.data})
    if review.data["result"] != "approved":
        return run.finish("not_accepted", platform_reference=sign_up.data["platform_reference"], notes=review.data.get("notes"))
    run.wait_until("await_event_end", event_end(selection.data["event_ends_on"]))
    effect = run.human("track_effect", context={"selection": selection.data, "sign_up": sign_up.data})
    return run.finish(
        "tracked", rounds=rounds, platform_reference=sign_up.data["platform_reference"],
        gmv=effect.data["gmv"], spend=effect.data["spend"], roi=effect.data["roi"],
    )


@flow(name=PROCESS, on_failure=[mark_instance_failed], on_crashed=[mark_instance_failed])
def ads_and_events(instance_id: str):  # noqa: ANN201 - returns a result dict or a Cancelled state
    """直通车，活动，钻展操作流程: select products, budget approval, sign-up, review result, effect."""
    try:
        return handle_event(ProcessRun.load(PROCESS, instance_id))
    except InstanceEnded as exc:
        return stop_ended_run(exc)
