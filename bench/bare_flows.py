"""Bare Prefect flows shaped like a return and a pre-sales order, for bench.bare_prefect.

Each human step is `suspend_flow_run(wait_for_input=..., key=<step>)`, resumed by simulated
staff with `resume_flow_run(run_input=...)`; no database of ours, no auto steps. Served by the
default runner (`prefect.serve`: a process per flow run):

    python -m bench.bare_flows      # needs PREFECT_API_URL; serves both deployments as "bare"

Only Prefect and pydantic are imported here: the runner's child processes import this file.
Pause keys use dashes: Prefect stores the run input under a key that allows no underscore.
"""

from __future__ import annotations

from prefect import flow, serve
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field

DEPLOYMENT = "bare"


class Decision(RunInput):
    decision: str
    comment: str = ""


class Parcel(RunInput):
    return_tracking_no: str
    carrier: str = ""


class Inspection(RunInput):
    condition: str
    restock: str
    deduction: float = 0


class Answer(RunInput):
    outcome: str
    order_id: str = ""
    order_lines: list[dict] = Field(default_factory=list)
    fulfilment: str = "ship"


class Picked(RunInput):
    waybill_no: str


class Packed(RunInput):
    packages: int


class Shipped(RunInput):
    carrier: str
    tracking_no: str


@flow(name="bare_return")
def bare_return(order_id: str) -> str:
    """Review, parcel, inspection and, for damaged goods, operations' approval of the deduction."""
    suspend_flow_run(wait_for_input=Decision, key="cs-review")
    suspend_flow_run(wait_for_input=Parcel, key="await-parcel")
    inspection = suspend_flow_run(wait_for_input=Inspection, key="inspect")
    if inspection.condition == "damaged":
        suspend_flow_run(wait_for_input=Decision, key="deduction-approval")
    return f"refunded {order_id}"


@flow(name="bare_presales")
def bare_presales(customer: str) -> str:
    """Answer, pick, pack and ship."""
    suspend_flow_run(wait_for_input=Answer, key="answer-inquiry")
    suspend_flow_run(wait_for_input=Picked, key="print-and-pick")
    suspend_flow_run(wait_for_input=Packed, key="verify-and-pack")
    suspend_flow_run(wait_for_input=Shipped, key="ship")
    return f"shipped for {customer}"


if __name__ == "__main__":
    serve(bare_return.to_deployment(DEPLOYMENT), bare_presales.to_deployment(DEPLOYMENT), limit=None)
