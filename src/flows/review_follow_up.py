"""中差评回访 — a middle or bad review (中差评) of an order with no returns case gets a follow-up call."""

from __future__ import annotations

from typing import Any

from ecomflow.flows.primitives import ProcessRun
from ecomflow.flows.process_flow import process_flow

PROCESS = "review_follow_up"


@process_flow(PROCESS, written_for={1})
def review_follow_up(run: ProcessRun) -> dict[str, Any]:
    """中差评回访: customer service calls the buyer about the review and records what came of it."""
    context = {key: run.params[key] for key in ("order_id", "platform", "rating", "content") if key in run.params}
    follow_up = run.human("follow_up", context=context)
    return run.finish(follow_up.data["contact_result"], follow_up=follow_up.data, rating=run.params["rating"])
