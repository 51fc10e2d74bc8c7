"""Ask the Prefect server, by trying, whether a worker may take runs straight to Running.

A take must fail for a run another worker took or somebody cancelled since the poll. Prefect's own
guard is on Pending; ecomflow's embedded server guards Running too (ecomflow/prefect_takes.py), which
saves a state change per execution. A worker may point at a server without that rule (stock
`prefect server start`, Prefect Cloud), so it checks once at start: it makes a cancelled run of one
of its deployments, proposes Running, and deletes the run. Refused: takes go to Running. Accepted:
the server would revive a cancelled run, so takes keep going through Pending.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Cancelled, Running

logger = logging.getLogger("ecomflow.worker")

CHECK_RUN_NAME = "ecomflow-take-check"


def server_refuses_running_takes_of_cancelled_runs(client: SyncPrefectClient, deployment_id: UUID) -> bool:
    """Return whether the server refuses Running to a cancelled run of this deployment."""
    run = client.create_flow_run_from_deployment(
        deployment_id,
        # Matches no instance: the run is never executed (it is never Scheduled) and is deleted below.
        parameters={"instance_id": CHECK_RUN_NAME},
        state=Cancelled(message="made by an ecomflow worker at its start to check how the server guards takes"),
        name=CHECK_RUN_NAME,
        tags=["ecomflow"],
    )
    try:
        refused = client.set_flow_run_state(run.id, Running()).status != SetStateStatus.ACCEPT
    finally:
        client.delete_flow_run(run.id)
    if not refused:
        logger.warning("the Prefect server accepts Running for a cancelled run: runs are taken through Pending")
    return refused
