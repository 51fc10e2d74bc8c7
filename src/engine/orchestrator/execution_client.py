"""The Prefect client a worker thread executes runs with: it answers what the worker already knows of its run.

Prefect's flow engine, given a run from a deployment, writes the run's flow version and retry policy
back to the server (a PATCH) and reads the run again after setting it Running (a GET), on every
execution. The worker polled the run and every state change of the execution passes through this
client, so both repeat what is known: together 2.6 of the ~12 Prefect calls of a human step
(bench/RESULTS.md). While `executing(run)` is open, this client
- answers `read_flow_run` of that run with the run the engine holds (the engine sets each accepted
  state on it; this client does too, for the states proposed from inside the flow);
- sends `update_flow_run` of that run only when it changes what the server had when polled;
- answers the engine's first Running proposal itself when the worker's take already moved the run to
  Running (take_check.py): the server holds exactly that state.
A suspension set from outside is not seen by the read any more: the shared suspension watch
(suspension_watch.py) reports it from Prefect's events, as it does in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun, FlowRunPolicy, StateType
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAcceptDetails
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL


class ExecutionClient(SyncPrefectClient):
    """A SyncPrefectClient that knows the one run its thread is executing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run: FlowRun | None = None
        self._server_version: str | None = None
        self._server_policy: FlowRunPolicy | None = None
        self._taken_to_running = False

    @contextmanager
    def executing(self, run: FlowRun, *, taken_to_running: bool = False) -> Iterator[None]:
        """Know this run (as just polled and taken) while the thread executes it."""
        self._run = run
        self._taken_to_running = taken_to_running
        self._server_version = run.flow_version
        # A copy: the engine fills the run's policy in place before writing it back.
        self._server_policy = run.empirical_policy.model_copy(deep=True)
        try:
            yield
        finally:
            self._run = self._server_version = self._server_policy = None
            self._taken_to_running = False

    def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        """Return the run in execution as known here; any other run from the server."""
        if self._run is not None and self._run.id == flow_run_id:
            return self._run
        return super().read_flow_run(flow_run_id)

    def update_flow_run(self, flow_run_id: UUID, **changes: Any) -> httpx.Response:
        """Send the update unless it only repeats the version and policy the server had when the run was polled."""
        if self._run is not None and self._run.id == flow_run_id and self._repeats(changes):
            return httpx.Response(204)  # what the server answers a PATCH; the engine does not look at it
        response = super().update_flow_run(flow_run_id, **changes)
        if self._run is not None and self._run.id == flow_run_id:
            self._server_version = changes.get("flow_version", self._server_version)
            policy = changes.get("empirical_policy")
            self._server_policy = policy.model_copy(deep=True) if policy is not None else self._server_policy
        return response

    def _repeats(self, changes: dict[str, Any]) -> bool:
        known = {"flow_version": self._server_version, "empirical_policy": self._server_policy}
        given = {name: value for name, value in changes.items() if value is not None}
        return set(given) <= set(known) and all(known[name] == value for name, value in given.items())

    def set_flow_run_state(self, flow_run_id: UUID, state: Any, force: bool = False) -> Any:
        """Propose the state; an accepted state of the run in execution becomes its known state."""
        run = self._run
        if self._taken_to_running and run is not None and run.id == flow_run_id and state.type == StateType.RUNNING:
            # Only the first: a Running after a retry's AwaitingRetry is the server's to decide.
            self._taken_to_running = False
            return OrchestrationResult(state=run.state, status=SetStateStatus.ACCEPT, details=StateAcceptDetails())
        result = super().set_flow_run_state(flow_run_id, state, force=force)
        if run is not None and run.id == flow_run_id and result.status == SetStateStatus.ACCEPT and result.state:
            run.state, run.state_id = result.state, result.state.id
            run.state_type, run.state_name = result.state.type, result.state.name
        return result


def new_execution_client() -> ExecutionClient:
    """Return an ExecutionClient for the configured API, as Prefect's get_client would make a SyncPrefectClient."""
    return ExecutionClient(
        PREFECT_API_URL.value(), auth_string=PREFECT_API_AUTH_STRING.value(), api_key=PREFECT_API_KEY.value()
    )
