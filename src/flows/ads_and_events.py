"""直通车，活动，钻展操作流程 — ads and events, process 8 of PROCESSES.md.

An event ends at the end of its last day (midnight after event_ends_on, calendar time zone);
the effect is tracked then, due 3 days later. The sweeper reminds about the review result daily.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.rules.budget import approver_role
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import process_flow

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
        approver = approver_role(selection.data["budget"], owner_above=run.rule("owner_approval_above"))
        step = "owner_budget_approval" if approver == "owner" else "budget_approval"
        decision = run.approval(step, round=round, context={"selection": selection.data, "selected_by": selection.by})
        if decision.approved:
            return selection, decision, round
        context = {
            "rework": {"round": round, "comment": decision.comment, "by": decision.by},
            "previous_selection": selection.data,
        }
        round = run.next_round("select_products", round)


@process_flow(PROCESS, written_for={1})
def ads_and_events(run: ProcessRun) -> dict[str, Any]:
    """直通车，活动，钻展操作流程: select products, budget approval, sign-up, review result, effect."""
    selection, budget, rounds = _selection_until_approved(run)
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
        platform_reference=sign_up.data["platform_reference"],
        gmv=effect.data["gmv"],
        spend=effect.data["spend"],
        roi=effect.data["roi"],
    )
