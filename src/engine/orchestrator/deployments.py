"""One Prefect deployment per implemented process, with the schedule flows.yaml gives it."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from prefect import Flow
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.orchestrator.runs import DEPLOYMENT_NAME


def register_deployments(flows: Mapping[str, Flow], definitions: Definitions) -> dict[UUID, Flow]:
    """Create or update the deployment of every flow; return them by deployment id."""
    registered: dict[UUID, Flow] = {}
    for process_key, flow in flows.items():
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
        registered[deployment.apply()] = flow
    return registered
