"""Flow-run operations on the Prefect API, translated into what the engine needs to know."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from types import SimpleNamespace
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import ArtifactCreate, DeploymentFlowRunCreate
from prefect.client.schemas.objects import FlowRunPolicy, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import suspend_flow_run
from prefect.settings import PREFECT_API_URL
from prefect.states import Cancelled, Scheduled, to_state_create

from ecomflow.engine.config import get_settings
from ecomflow.engine.orchestrator.suspension_watch import suspending_itself

DEPLOYMENT_NAME = "ecomflow"
_thread_state = threading.local()


def _client() -> SyncPrefectClient:
    """Return this thread's Prefect client, opened once per API URL: a new one per call costs ~20 ms of TLS setup."""
    api_url = PREFECT_API_URL.value()
    cached = getattr(_thread_state, "client", None)
    if cached is None or cached[0] != api_url:
        client = get_client(sync_client=True)
        client.__enter__()
        _thread_state.client = cached = (api_url, client)
    return cached[1]


class ResumeOutcome(Enum):
    """What happened to a resume request."""

    RESUMED = "resumed"  # the run was waiting on this task and now continues
    OBSOLETE = "obsolete"  # the run is past this wait or finished: nothing to do
    RUN_ENDED = "run_ended"  # the run failed, crashed or was cancelled: it will never take this resume
    NOT_YET = "not_yet"  # the run has not reached its wait yet: try again shortly


@dataclass(frozen=True)
class RunView:
    """The few facts about a flow run the engine looks at."""

    id: str
    state_type: str
    state_name: str
    pause_key: str | None


def flow_run_ui_url(flow_run_id: str | None) -> str | None:
    """Return the Prefect UI page of a flow run."""
    if not flow_run_id:
        return None
    return f"{get_settings().resolved_prefect_ui_url}/runs/flow-run/{flow_run_id}"


def instance_page_url(instance_id: str) -> str:
    """Return the web page of an instance (its path on the process map) under the public base URL."""
    return f"{get_settings().resolved_public_url}/ui/instances/{instance_id}"


def link_run_to_instance_page(*, flow_run_id: str, instance_id: str, title: str) -> None:
    """Attach a link artifact to the flow run, so its page in the Prefect UI leads to the instance page."""
    url = instance_page_url(instance_id)
    _client().create_artifact(
        ArtifactCreate(
            type="markdown",
            data=f"[{title} — ecomflow: where this case stands]({url})",
            description="The instance page in ecomflow: the path on the process map, the tasks and who holds them.",
            flow_run_id=UUID(flow_run_id),
        )
    )


def start_flow_run(*, process_key: str, instance_id: str, run_name: str, tags: list[str]) -> str:
    """Create the flow run of an instance from its deployment; the same instance always gets the same run."""
    settings = get_settings()
    run = DeploymentFlowRunCreate(
        parameters={"instance_id": instance_id},
        state=to_state_create(Scheduled()),
        name=run_name,
        tags=tags,
        idempotency_key=f"ecomflow-instance-{instance_id}",
        # The retry policy the worker's engine would otherwise write back with a PATCH on the first execution.
        empirical_policy=FlowRunPolicy(
            retries=settings.flow_retries, retry_delay=round(settings.flow_retry_delay_seconds)
        ),
    ).model_dump(mode="json", exclude_unset=True)
    try:
        created = _create_from_deployment(process_key, run)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 404:
            raise
        # The deployment was deleted and made anew since it was looked up: look it up again.
        _deployment_ids.pop((PREFECT_API_URL.value(), process_key), None)
        created = _create_from_deployment(process_key, run)
    return str(created.json()["id"])


def _create_from_deployment(process_key: str, run: dict) -> httpx.Response:
    # Prefect's create_flow_run_from_deployment has no retry policy argument; its route takes one.
    return _client().request(
        "POST", "/deployments/{id}/create_flow_run", path_params={"id": _deployment_id(process_key)}, json=run
    )


_deployment_ids: dict[tuple[str, str], UUID] = {}


def _deployment_id(process_key: str) -> UUID:
    """Return the id of the process's deployment, looked up once per API URL (it was one call per start)."""
    key = (PREFECT_API_URL.value(), process_key)
    if key not in _deployment_ids:
        _deployment_ids[key] = _client().read_deployment_by_name(f"{process_key}/{DEPLOYMENT_NAME}").id
    return _deployment_ids[key]


def read_run(flow_run_id: str) -> RunView | None:
    """Return a flow run's state, or None if Prefect has no such run."""
    client = _client()
    try:
        run = client.read_flow_run(UUID(flow_run_id))
    except ObjectNotFound:
        return None
    state = run.state
    if state is None:
        return RunView(id=flow_run_id, state_type="SCHEDULED", state_name="", pause_key=None)
    return RunView(
        id=flow_run_id,
        state_type=state.type.value,
        state_name=state.name or "",
        pause_key=state.state_details.pause_key,
    )


def resume_run(*, flow_run_id: str, pause_key_prefix: str, sole_wait: bool) -> ResumeOutcome:
    """Resume the run if it is suspended on a key with this prefix.

    sole_wait: our database says the run can be suspended on nothing else. Then the resume is sent without
    reading the run first (Prefect refuses it unless the run is paused), and the run is read only when refused,
    to tell why. Otherwise (parallel lanes, a timer armed) the run is read first and its pause key checked, so
    a run waiting on another lane is not woken for nothing.
    """
    if sole_wait:
        try:
            response = _client().resume_flow_run(UUID(flow_run_id))
        except httpx.HTTPStatusError:
            response = None  # no such run, or the server failed: the careful path below tells which
        if response is not None and response.status == SetStateStatus.ACCEPT:
            return ResumeOutcome.RESUMED
    return resume_if_waiting(flow_run_id=flow_run_id, pause_key_prefix=pause_key_prefix)


def resume_if_waiting(*, flow_run_id: str, pause_key_prefix: str) -> ResumeOutcome:
    """Read the run, and resume it if it is suspended on a key with this prefix."""
    run = read_run(flow_run_id)
    if run is None or run.state_type == StateType.COMPLETED.value:
        return ResumeOutcome.OBSOLETE
    if run.state_type in {t.value for t in (StateType.FAILED, StateType.CANCELLED, StateType.CRASHED)}:
        return ResumeOutcome.RUN_ENDED
    if run.state_type != StateType.PAUSED.value:
        return ResumeOutcome.NOT_YET
    if not (run.pause_key or "").startswith(pause_key_prefix):
        return ResumeOutcome.OBSOLETE
    client = _client()
    response = client.resume_flow_run(UUID(flow_run_id))
    if response.status == SetStateStatus.ACCEPT:
        return ResumeOutcome.RESUMED
    return ResumeOutcome.NOT_YET


def cancel_flow_run(flow_run_id: str) -> None:
    """Force the run into Cancelled, whatever it is doing."""
    client = _client()
    try:
        client.set_flow_run_state(UUID(flow_run_id), Cancelled(message="cancelled in ecomflow"), force=True)
    except ObjectNotFound:
        return


def suspend_current_run(key: str) -> None:
    """Suspend the calling flow run; raises Pause, or returns if this key was already resumed."""
    with suspending_itself(FlowRunContext.get().flow_run.id):
        suspend_flow_run(key=key, timeout=get_settings().suspend_timeout_seconds)


@lru_cache(maxsize=1)
def _health_client() -> httpx.Client:
    # One shared client: a new one per call costs 17-27 ms of TLS setup (bench/inbox_latency.py).
    return httpx.Client(timeout=2)


def api_is_healthy() -> bool:
    """Return whether the Prefect API answers its health check."""
    try:
        # A plain short request: the Prefect client retries for long when the server is down.
        healthy = _health_client().get(f"{get_settings().resolved_prefect_api_url}/health").status_code == 200
    except httpx.HTTPError:
        healthy = False
    _health.answered_at = time.monotonic() if healthy else float("-inf")
    return healthy


# A health answer is trusted this long: one check per delivery was 1.3 of a human step's 12 Prefect calls.
HEALTH_TRUSTED_SECONDS = 5.0
# When the API last answered healthy, for every thread of the process.
_health = SimpleNamespace(answered_at=float("-inf"))


def api_was_recently_healthy() -> bool:
    """Return whether the Prefect API answered its health check in the last few seconds, asking it if not."""
    if time.monotonic() - _health.answered_at < HEALTH_TRUSTED_SECONDS:
        return True
    return api_is_healthy()


def distrust_health() -> None:
    """Forget the last healthy answer (a call to Prefect just failed), so the next delivery checks first."""
    _health.answered_at = float("-inf")
