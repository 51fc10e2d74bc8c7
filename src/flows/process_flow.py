"""Turn a process body (a function of one ProcessRun) into the Prefect flow that runs the process.

    @process_flow("returns_exchange", written_for={1})
    def returns_exchange(run: ProcessRun) -> dict[str, Any]:
        ...

The flow is named after the process and takes `instance_id` (optional, with `scheduled=`, for a
run the scheduler starts); a failed or crashed run marks its instance failed, and a run whose
instance ended elsewhere ends Cancelled.

`written_for` names the flows.yaml `version:` values of the process this body can run. An
instance pinned to a definition version declared otherwise is never replayed on this code: its
run fails at once, naming the versions, and its instance is marked failed (until flow code
written for it is deployed, or the instance is migrated to a version this code runs).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import prefect
from prefect import Flow
from prefect.states import Cancelled, Failed, State
from prefect.utilities.hashing import file_hash

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import UnrunnableVersion
from ecomflow.engine.instances.lifecycle import InstanceState, find_instance_of_run, get_instance, set_instance_state
from ecomflow.flows.primitives import InstanceEnded, ProcessRun, ReworkStopped

__all__ = ["ProcessBody", "ScheduledStart", "mark_instance_failed", "process_flow"]

ProcessBody = Callable[[ProcessRun], dict[str, Any]]


@dataclass(frozen=True)
class ScheduledStart:
    """The instance a scheduled run starts for itself: its business key and start-form params."""

    business_key: str
    params: dict[str, Any] = field(default_factory=dict)


def process_flow(
    process_key: str, *, written_for: Iterable[int], scheduled: Callable[[], ScheduledStart] | None = None
) -> Callable[[ProcessBody], Flow]:
    """Return a decorator that makes a process body the Prefect flow of `process_key`, for these flows.yaml versions."""
    versions = frozenset(written_for)
    if not versions or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in versions):
        raise TypeError(f"the flow of {process_key}: written_for must name flows.yaml versions (positive integers)")

    def build(body: ProcessBody) -> Flow:
        if body.__name__ != process_key:
            # Deployments and implemented_flows() find the flow as the module attribute named after the process.
            raise TypeError(f"the flow of process {process_key} must be named {process_key}, not {body.__name__}")
        run_process = (
            _by_id_or_schedule(process_key, body, scheduled, versions)
            if scheduled
            else _by_id(process_key, body, versions)
        )
        # Prefect names the deployment's entrypoint `module.name` and describes the flow by its docstring.
        run_process.__module__, run_process.__doc__ = body.__module__, body.__doc__
        run_process.__name__ = run_process.__qualname__ = process_key
        run_process.written_for = versions
        return prefect.flow(
            name=process_key,
            version=_source_hash(body),
            on_failure=[mark_instance_failed],
            on_crashed=[mark_instance_failed],
        )(run_process)

    return build


def mark_instance_failed(flow, flow_run, state) -> None:
    """Record in ecomflow that the instance's run failed, so managers see it."""
    instance_id = (flow_run.parameters or {}).get("instance_id")
    with session_scope() as session:
        # A scheduled run has no instance_id parameter: it started its instance itself.
        instance = (
            get_instance(session, instance_id)
            if instance_id
            else find_instance_of_run(session, flow_run_id=str(flow_run.id))
        )
        if instance is None:
            return
        set_instance_state(session, instance=instance, state=InstanceState.FAILED, error=state.message or "")


def _by_id(process_key: str, body: ProcessBody, versions: frozenset[int]) -> Callable[..., Any]:
    """Return the flow function of a process started over the API or as a child: it takes the instance id."""

    def run_process(instance_id: str):
        return _run_to_end(body, lambda: ProcessRun.load(process_key, instance_id, written_for=versions))

    return run_process


def _by_id_or_schedule(
    process_key: str, body: ProcessBody, scheduled: Callable[[], ScheduledStart], versions: frozenset[int]
) -> Callable[..., Any]:
    """Return the flow function of a scheduled process: without an instance id the run starts its own instance."""

    def run_process(instance_id: str | None = None):
        def load() -> ProcessRun:
            if instance_id is not None:
                return ProcessRun.load(process_key, instance_id, written_for=versions)
            start = scheduled()
            return ProcessRun.load_or_start(
                process_key, business_key=start.business_key, params=start.params, written_for=versions
            )

        return _run_to_end(body, load)

    return run_process


def _run_to_end(body: ProcessBody, load: Callable[[], ProcessRun]) -> dict[str, Any] | State:
    """Run the body on the loaded run: Cancelled if the instance ended elsewhere, Failed if this code cannot run it."""
    try:
        run = load()
    except InstanceEnded as exc:
        return Cancelled(message=str(exc))
    except UnrunnableVersion as exc:
        _fail_instance(exc.about["instance_id"], exc.detail)
        # A returned Failed state is final: retrying could never make this code fit the instance's version.
        return Failed(message=exc.detail)
    try:
        return body(run)
    except InstanceEnded as exc:
        return Cancelled(message=str(exc))
    except ReworkStopped as stop:
        return run.finish(
            "stopped_at_rework_ceiling",
            step=stop.step_key,
            rounds=stop.rounds,
            stopped_by=stop.decision.by,
            comment=stop.decision.comment,
        )


def _fail_instance(instance_id: str, error: str) -> None:
    with session_scope() as session:
        set_instance_state(
            session, instance=get_instance(session, instance_id), state=InstanceState.FAILED, error=error
        )


def _source_hash(body: ProcessBody) -> str | None:
    """Return the hash of the body's file: the flow version Prefect gives a flow defined there."""
    source = inspect.getsourcefile(body)
    return file_hash(source) if source else None
