"""How ecomflow runs Prefect: one shared suspension watch and result defaults settled once in the worker, an embedded
server without late-run rewrites, and no Prefect call that our own knowledge makes unnecessary."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import prefect.flow_engine
import pytest
from prefect import flow, get_client
from prefect._flow_run_suspension import FlowRunSuspensionRequest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAcceptDetails
from prefect.exceptions import Pause
from prefect.results import get_default_result_storage
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Completed, Running

from ecomflow.engine.config import get_settings
from ecomflow.engine.orchestrator import runs
from ecomflow.engine.orchestrator.execution_client import new_execution_client
from ecomflow.engine.orchestrator.result_defaults import with_result_defaults
from ecomflow.engine.orchestrator.suspension_watch import (
    SharedSuspensionWatch,
    shared_suspension_watch,
    suspending_itself,
)
from ecomflow.engine.orchestrator.take_check import server_refuses_running_takes_of_cancelled_runs
from tests.e2e.conftest import PREFECT_API, Stack, prefect_api, prefect_run_state, wait_until

pytestmark = pytest.mark.e2e


def _running_flow_run() -> uuid.UUID:
    flow = prefect_api("POST", "/flows/", json={"name": f"suspension-watch-{uuid.uuid4().hex[:6]}"})
    run = prefect_api("POST", "/flow_runs/", json={"flow_id": flow.json()["id"], "state": {"type": "RUNNING"}})
    assert run.status_code == 201, run.text
    return uuid.UUID(run.json()["id"])


def _suspend_from_outside(flow_run_id: uuid.UUID) -> None:
    state = {"type": "PAUSED", "name": "Suspended", "state_details": {"pause_reschedule": True, "pause_key": "outside"}}
    response = prefect_api("POST", f"/flow_runs/{flow_run_id}/set_state", json={"state": state, "force": True})
    assert response.status_code in (200, 201), response.text
    assert response.json()["status"] == "ACCEPT"


@pytest.fixture
def watch(stack: Stack) -> Iterator[SharedSuspensionWatch]:
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), shared_suspension_watch() as shared:
        yield shared


def test_the_flow_engine_observer_is_routed_to_the_shared_watch_and_back(stack: Stack) -> None:
    original = prefect.flow_engine.observe_flow_run_suspension
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), shared_suspension_watch() as shared:
        assert prefect.flow_engine.observe_flow_run_suspension == shared.watch
    assert prefect.flow_engine.observe_flow_run_suspension is original


def test_a_run_suspended_from_outside_is_marked_and_its_neighbour_is_not(watch: SharedSuspensionWatch) -> None:
    suspended, neighbour = _running_flow_run(), _running_flow_run()
    suspended_request, neighbour_request = FlowRunSuspensionRequest(), FlowRunSuspensionRequest()
    with watch.watch(suspended, suspended_request), watch.watch(neighbour, neighbour_request):
        _suspend_from_outside(suspended)
        wait_until(suspended_request.is_requested, timeout=20, what="the suspension to reach the running run")
        assert suspended_request.get_state().name == "Suspended"
        assert not neighbour_request.is_requested()


def test_runs_watched_from_many_threads_share_it(watch: SharedSuspensionWatch) -> None:
    runs = [_running_flow_run() for _ in range(6)]
    requests = {run: FlowRunSuspensionRequest() for run in runs}
    inside, release = threading.Barrier(len(runs) + 1), threading.Event()

    def execute(run: uuid.UUID) -> None:
        with watch.watch(run, requests[run]):
            inside.wait(timeout=20)
            release.wait(timeout=30)

    threads = [threading.Thread(target=execute, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    inside.wait(timeout=20)
    for run in runs[::2]:
        _suspend_from_outside(run)
    wait_until(lambda: all(requests[run].is_requested() for run in runs[::2]), timeout=20, what="every suspension")
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert [requests[run].is_requested() for run in runs] == [True, False] * 3


def test_the_embedded_prefect_server_runs_without_late_runs_and_pause_expirations(stack: Stack) -> None:
    settings = prefect_api("GET", "/admin/settings").json()
    assert settings["server"]["services"]["late_runs"]["enabled"] is False
    assert settings["server"]["services"]["pause_expirations"]["enabled"] is False


@flow(name="result-defaults-probe")
def _probe() -> int:
    return 1


def test_settled_flows_run_without_asking_the_server_for_result_storage(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = []
    read = SyncPrefectClient.read_server_default_result_storage
    monkeypatch.setattr(
        SyncPrefectClient, "read_server_default_result_storage", lambda client: asked.append(1) or read(client)
    )
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), get_client(sync_client=True) as client:
        settled = with_result_defaults({"probe": _probe}, client)["probe"]
        assert settled.result_storage == Path(get_default_result_storage(_sync=True).basepath)
        assert settled.persist_result is False  # Prefect's default: no setting and no server storage block
        before = len(asked)
        assert [settled(return_state=True).is_completed() for _ in range(2)] == [True, True]
        assert len(asked) == before
        # The unsettled flow still asks on each run: what the worker spares.
        assert _probe(return_state=True).is_completed() and len(asked) > before


def _suspend_itself(flow_run_id: uuid.UUID) -> None:
    with suspending_itself(flow_run_id):
        _suspend_from_outside(flow_run_id)  # the proposal suspend_flow_run makes, then the Pause it raises
        raise Pause()


def test_a_run_suspending_itself_is_let_pass_and_its_neighbour_is_still_watched(watch: SharedSuspensionWatch) -> None:
    own, neighbour = _running_flow_run(), _running_flow_run()
    own_request, neighbour_request = FlowRunSuspensionRequest(), FlowRunSuspensionRequest()
    with watch.watch(own, own_request), watch.watch(neighbour, neighbour_request):
        with pytest.raises(Pause):
            _suspend_itself(own)
        assert watch.is_suspending_itself(own)
        _suspend_from_outside(neighbour)
        wait_until(neighbour_request.is_requested, timeout=20, what="the neighbour's suspension")
        # Its own event came first and was let pass: no read of the run to confirm it.
        assert not own_request.is_requested()
    assert not watch.is_suspending_itself(own)


def test_a_run_that_did_not_suspend_after_all_is_watched_again(watch: SharedSuspensionWatch) -> None:
    run, request = _running_flow_run(), FlowRunSuspensionRequest()
    with watch.watch(run, request):
        with suspending_itself(run):
            pass  # suspend_flow_run returned: this key had been resumed already
        assert not watch.is_suspending_itself(run)
        _suspend_from_outside(run)
        wait_until(request.is_requested, timeout=20, what="the suspension from outside")


def _sent_requests(client: SyncPrefectClient) -> list[str]:
    sent: list[str] = []

    def note(request: httpx.Request) -> None:
        if "/flow_runs/" in request.url.path:  # not the CSRF token a client fetches before its first write
            sent.append(f"{request.method} {request.url.path}")

    client._client.event_hooks["request"].append(note)
    return sent


def test_the_execution_client_answers_what_it_knows_of_its_run(stack: Stack) -> None:
    run_id, other_id = _running_flow_run(), _running_flow_run()
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), new_execution_client() as client:
        run = client.read_flow_run(run_id)
        sent = _sent_requests(client)
        with client.executing(run):
            assert client.read_flow_run(run_id) is run
            client.update_flow_run(flow_run_id=run_id, empirical_policy=run.empirical_policy.model_copy())
            assert sent == []  # a repeat of what the server holds
            changed = run.empirical_policy.model_copy(update={"retries": 2})
            client.update_flow_run(flow_run_id=run_id, empirical_policy=changed)
            client.update_flow_run(flow_run_id=run_id, empirical_policy=changed.model_copy())
            assert sent == [f"PATCH /api/flow_runs/{run_id}"]
            assert client.set_flow_run_state(run_id, Completed()).status.value == "ACCEPT"
            assert run.state.is_completed() and run.state_type.value == "COMPLETED"
            assert client.read_flow_run(other_id).id == other_id
            assert sent[-1] == f"GET /api/flow_runs/{other_id}"
        served = client.read_flow_run(run_id)
    assert sent[-1] == f"GET /api/flow_runs/{run_id}"
    assert served.state.is_completed() and served.empirical_policy.retries == 2


@pytest.fixture
def prefect_health(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    monkeypatch.setenv("ECOMFLOW_PREFECT_API_URL", PREFECT_API)
    get_settings.cache_clear()
    runs.distrust_health()
    hooks = runs._health_client().event_hooks
    sent: list[str] = []
    hooks["request"].append(lambda request: sent.append(request.url.path))
    try:
        yield sent
    finally:
        hooks["request"].pop()
        runs.distrust_health()
        monkeypatch.undo()
        get_settings.cache_clear()


def test_deliveries_trust_a_healthy_answer_for_a_few_seconds(prefect_health: list[str]) -> None:
    assert runs.api_was_recently_healthy() and runs.api_was_recently_healthy()
    assert prefect_health == ["/api/health"]
    runs.distrust_health()  # a delivery failed: the next one asks again
    assert runs.api_was_recently_healthy()
    assert prefect_health == ["/api/health"] * 2
    assert runs.api_is_healthy()  # the health page always asks
    assert len(prefect_health) == 3


def _deployment() -> str:
    flow = prefect_api("POST", "/flows/", json={"name": f"take-rule-{uuid.uuid4().hex[:6]}"})
    deployment = prefect_api("POST", "/deployments/", json={"name": "ecomflow", "flow_id": flow.json()["id"]})
    assert deployment.status_code in (200, 201), deployment.text
    return deployment.json()["id"]


def _run_of(deployment_id: str, state: dict[str, Any]) -> str:
    run = prefect_api("POST", f"/deployments/{deployment_id}/create_flow_run", json={"state": state})
    assert run.status_code == 201, run.text
    return run.json()["id"]


def _propose(flow_run_id: str, state_type: str, *, force: bool = False) -> str:
    response = prefect_api(
        "POST", f"/flow_runs/{flow_run_id}/set_state", json={"state": {"type": state_type}, "force": force}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["status"]


def test_the_embedded_server_lets_only_a_waiting_run_of_a_deployment_be_taken_to_running(stack: Stack) -> None:
    deployment_id = _deployment()
    taken = _run_of(deployment_id, {"type": "SCHEDULED"})
    assert _propose(taken, "RUNNING") == "ACCEPT"  # the first taker
    assert _propose(taken, "RUNNING") == "ABORT"  # a second worker polled it too
    assert prefect_run_state(taken)["type"] == "RUNNING"
    cancelled = _run_of(deployment_id, {"type": "SCHEDULED"})
    # Cancelled in the UI between a poll and a take: a run with no infrastructure goes straight to Cancelled.
    assert _propose(cancelled, "CANCELLING") == "REJECT"
    assert prefect_run_state(cancelled)["type"] == "CANCELLED"
    assert _propose(cancelled, "RUNNING") == "ABORT"
    assert prefect_run_state(cancelled)["type"] == "CANCELLED"
    for waiting in ("PENDING", "PAUSED"):  # PAUSED without a reschedule: a pause that blocks in place
        run = _run_of(deployment_id, {"type": "SCHEDULED"})
        _propose(run, waiting, force=True)
        assert _propose(run, "RUNNING") == "ACCEPT", waiting
    # Taken, executed and suspended before a second worker's late take of the same poll arrives.
    suspended = _run_of(deployment_id, {"type": "SCHEDULED"})
    _suspend_from_outside(uuid.UUID(suspended))
    assert _propose(suspended, "RUNNING") == "ABORT"
    assert prefect_run_state(suspended)["name"] == "Suspended"
    # Runs of no deployment keep Prefect's own rules (an ad hoc re-run goes straight to Running).
    ad_hoc = prefect_api(
        "POST", "/flow_runs/", json={"flow_id": _running_flow_run_flow_id(), "state": {"type": "CANCELLED"}}
    )
    assert _propose(ad_hoc.json()["id"], "RUNNING") == "ACCEPT"


def _running_flow_run_flow_id() -> str:
    return prefect_api("POST", "/flows/", json={"name": f"ad-hoc-{uuid.uuid4().hex[:6]}"}).json()["id"]


def test_a_worker_finds_the_embedded_server_guards_running_takes_and_leaves_no_run_behind(stack: Stack) -> None:
    deployment_id = _deployment()
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), get_client(sync_client=True) as client:
        assert server_refuses_running_takes_of_cancelled_runs(client, uuid.UUID(deployment_id))
    left = prefect_api("POST", "/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}})
    assert left.json() == []


class _AcceptingClient:
    """A server without the rule, as far as the check can tell: it accepts Running from Cancelled."""

    def __init__(self) -> None:
        self.deleted: list[uuid.UUID] = []
        self.proposed: list[str] = []

    def create_flow_run_from_deployment(self, deployment_id: uuid.UUID, **kwargs: Any) -> Any:
        assert kwargs["state"].is_cancelled()
        return type("Run", (), {"id": uuid.uuid4()})()

    def set_flow_run_state(self, flow_run_id: uuid.UUID, state: Any) -> Any:
        self.proposed.append(state.type.value)
        return OrchestrationResult(state=state, status=SetStateStatus.ACCEPT, details=StateAcceptDetails())

    def delete_flow_run(self, flow_run_id: uuid.UUID) -> None:
        self.deleted.append(flow_run_id)


def test_a_server_that_would_revive_a_cancelled_run_keeps_takes_through_pending() -> None:
    client = _AcceptingClient()
    assert not server_refuses_running_takes_of_cancelled_runs(client, uuid.uuid4())  # type: ignore[arg-type]
    assert client.proposed == ["RUNNING"] and len(client.deleted) == 1


def test_the_execution_client_answers_the_engines_running_after_a_take_to_running(stack: Stack) -> None:
    run_id = uuid.UUID(_run_of(_deployment(), {"type": "RUNNING"}))  # as the worker's take left it
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}), new_execution_client() as client:
        run = client.read_flow_run(run_id)
        sent = _sent_requests(client)
        with client.executing(run, taken_to_running=True):
            answer = client.set_flow_run_state(run_id, Running())
            assert answer.status == SetStateStatus.ACCEPT and answer.state.id == run.state_id
            assert sent == []  # the server holds that Running already
            assert client.set_flow_run_state(run_id, Running()).status == SetStateStatus.ABORT  # only the first
            assert sent == [f"POST /api/flow_runs/{run_id}/set_state"]


def test_a_run_is_created_once_per_instance_with_the_retry_policy_the_engine_would_write(stack: Stack) -> None:
    deployment = prefect_api("GET", f"/deployments/{_deployment()}").json()
    process_key = prefect_api("GET", f"/flows/{deployment['flow_id']}").json()["name"]  # its deployment: {key}/ecomflow
    with temporary_settings(updates={PREFECT_API_URL: PREFECT_API}):
        first, again = (
            runs.start_flow_run(process_key=process_key, instance_id="i-1", run_name="r", tags=["x"]) for _ in range(2)
        )
    assert first == again
    policy = prefect_api("GET", f"/flow_runs/{first}").json()["empirical_policy"]
    settings = get_settings()
    assert (policy["retries"], policy["retry_delay"]) == (
        settings.flow_retries,
        round(settings.flow_retry_delay_seconds),
    )
