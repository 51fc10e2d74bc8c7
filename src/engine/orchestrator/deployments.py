"""One Prefect deployment per implemented process, with the schedule flows.yaml gives it."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from prefect import Flow
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.orchestrator.runs import DEPLOYMENT_NAME

REGISTERING_AT_ONCE = 4


def register_deployments(flows: Mapping[str, Flow], definitions: Definitions) -> dict[UUID, Flow]:
    """Create or update the deployment of every flow; return them by deployment id, in the flows' order."""
    # Each apply is a few calls to Prefect, mostly waiting: four at a time took a worker's 15 from 3.8-4.4 s to 2.2 s.
    with ThreadPoolExecutor(max_workers=REGISTERING_AT_ONCE, thread_name_prefix="register") as pool:
        ids = pool.map(lambda item: _apply_deployment(*item, definitions), flows.items())
        return dict(zip(ids, flows.values(), strict=True))


def _apply_deployment(process_key: str, flow: Flow, definitions: Definitions) -> UUID:
    """Create or update one flow's deployment; return its id."""
    spec = definitions.process(process_key)
    schedules = [Cron(spec.schedule.cron, timezone=spec.schedule.timezone)] if spec.schedule else []
    deployment = flow.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=schedules,
        tags=["ecomflow", process_key, *spec.roles],
        description=f"{spec.label.zh} — {spec.label.en}",
        version=str(spec.version),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return deployment.apply()
