"""The process flow decorator, without a Prefect server: what Prefect sees, how a run ends, failed runs."""

from __future__ import annotations

import importlib
import inspect
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from prefect import Flow
from prefect.deployments.runner import EntrypointType
from prefect.utilities.hashing import file_hash
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.lifecycle import cancel_instance, get_instance, record_flow_run
from ecomflow.engine.people.principals import Principal
from ecomflow.flows import implemented_flows
from ecomflow.flows.primitives import ProcessRun
from ecomflow.flows.process_flow import ScheduledStart, mark_instance_failed, process_flow
from tests.factories import make_instance, pin_to_edited_version

FLOWS = implemented_flows()


def _run(*, parameters: dict, run_id: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=run_id or str(uuid.uuid4()), parameters=parameters)


def _state(instance_id: str) -> str:
    with session_scope() as session:
        return get_instance(session, instance_id).state


def test_every_process_of_flows_yaml_has_its_flow() -> None:
    assert sorted(FLOWS) == sorted(get_definitions().processes)


@pytest.mark.parametrize("key", sorted(FLOWS))
class TestWhatPrefectSees:
    def test_the_flow_is_named_after_the_process_and_marks_failed_and_crashed_runs(self, key: str) -> None:
        flow = FLOWS[key]
        assert isinstance(flow, Flow) and flow.name == key
        assert flow.on_failure_hooks == [mark_instance_failed] and flow.on_crashed_hooks == [mark_instance_failed]
        assert not (flow.on_completion_hooks or flow.on_cancellation_hooks or flow.on_running_hooks)

    def test_it_takes_the_instance_id_which_only_a_scheduled_process_may_leave_out(self, key: str) -> None:
        schema = FLOWS[key].parameters.model_dump()
        assert list(schema["properties"]) == ["instance_id"]
        scheduled = get_definitions().process(key).schedule is not None
        if scheduled:
            assert "required" not in schema or schema["required"] == []
            assert schema["properties"]["instance_id"]["default"] is None
        else:
            assert schema["required"] == ["instance_id"]
            assert schema["properties"]["instance_id"]["type"] == "string"

    def test_the_deployment_entrypoint_loads_this_very_flow(self, key: str) -> None:
        entrypoint = FLOWS[key].to_deployment(name="check", entrypoint_type=EntrypointType.MODULE_PATH).entrypoint
        module, _, name = entrypoint.rpartition(".")
        assert (module, name) == (f"ecomflow.flows.{key}", key)
        assert getattr(importlib.import_module(module), name) is FLOWS[key]

    def test_its_version_is_its_own_module_and_its_description_starts_with_the_process_title(self, key: str) -> None:
        module = importlib.import_module(f"ecomflow.flows.{key}")
        assert FLOWS[key].version == file_hash(inspect.getsourcefile(module))
        assert FLOWS[key].description.startswith(f"{get_definitions().process(key).label.zh}: ")


def test_a_body_not_named_after_its_process_is_refused() -> None:
    with pytest.raises(TypeError, match="must be named returns_exchange, not handle_return"):

        @process_flow("returns_exchange", written_for={1})
        def handle_return(run: ProcessRun) -> dict[str, Any]:
            """Run nothing."""
            return {}


class TestHowARunEnds:
    def test_the_body_gets_the_loaded_run_and_its_result_is_the_flows(self, clean_db: str) -> None:
        seen: list[ProcessRun] = []

        @process_flow("returns_exchange", written_for={1})
        def returns_exchange(run: ProcessRun) -> dict[str, Any]:
            """Record the run."""
            seen.append(run)
            return {"outcome": "seen"}

        instance_id = make_instance()
        assert returns_exchange.fn(instance_id) == {"outcome": "seen"}
        [run] = seen
        with session_scope() as session:
            instance = get_instance(session, instance_id)
            stored = (instance.id, instance.process_key, instance.business_key, instance.params)
        assert (run.instance_id, run.spec.key, run.business_key, run.params) == stored

    def test_a_run_whose_instance_was_cancelled_ends_cancelled_without_running_the_body(self, clean_db: str) -> None:
        body_ran = []

        @process_flow("returns_exchange", written_for={1})
        def returns_exchange(run: ProcessRun) -> dict[str, Any]:
            """Record that the body ran."""
            body_ran.append(run)
            return {}

        instance_id = make_instance()
        with session_scope() as session:
            cancel_instance(
                session, instance_id=instance_id, principal=Principal(name="boss", roles=frozenset({"owner"}))
            )
        state = returns_exchange.fn(instance_id)
        assert state.is_cancelled() and state.message == f"instance {instance_id} is cancelled"
        assert body_ran == []


class TestScheduledStart:
    @pytest.fixture
    def started(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict]]:
        """Record load_or_start's arguments instead of reading the flow run context."""
        calls: list[tuple[str, str, dict]] = []

        def load_or_start(
            cls: type, process_key: str, *, business_key: str, params: dict, written_for: frozenset
        ) -> str:
            calls.append((process_key, business_key, params))
            return "the scheduled run"

        monkeypatch.setattr(ProcessRun, "load_or_start", classmethod(load_or_start))
        return calls

    def test_without_an_instance_id_the_run_starts_the_scheduled_instance(self, started: list) -> None:
        @process_flow(
            "daily_report",
            written_for={1},
            scheduled=lambda: ScheduledStart(business_key="2026-12-04", params={"report_date": "2026-12-04"}),
        )
        def daily_report(run: ProcessRun) -> dict[str, Any]:
            """Return the run it got."""
            return {"run": run}

        assert daily_report.fn() == {"run": "the scheduled run"}
        assert started == [("daily_report", "2026-12-04", {"report_date": "2026-12-04"})]

    def test_with_an_instance_id_the_schedule_is_not_asked(self, clean_db: str, started: list) -> None:
        def refuse() -> ScheduledStart:
            raise AssertionError("a run started over the API must not read its scheduled start")

        @process_flow("returns_exchange", written_for={1}, scheduled=refuse)
        def returns_exchange(run: ProcessRun) -> dict[str, Any]:
            """Return the instance id of the run."""
            return {"instance_id": run.instance_id}

        instance_id = make_instance()
        assert returns_exchange.fn(instance_id) == {"instance_id": instance_id}
        assert started == []


class TestMarkInstanceFailed:
    def test_an_instance_started_over_the_api_is_marked_failed(self, clean_db: str) -> None:
        instance_id = make_instance()
        mark_instance_failed(None, _run(parameters={"instance_id": instance_id}), SimpleNamespace(message="boom"))
        assert _state(instance_id) == "failed"

    def test_a_scheduled_run_finds_its_instance_by_flow_run(self, clean_db: str) -> None:
        instance_id, run_id = make_instance(), str(uuid.uuid4())
        with session_scope() as session:
            record_flow_run(session, instance_id=instance_id, flow_run_id=run_id)
        mark_instance_failed(None, _run(parameters={}, run_id=run_id), SimpleNamespace(message="boom"))
        assert _state(instance_id) == "failed"

    def test_a_run_without_an_instance_changes_nothing(self, clean_db: str) -> None:
        instance_id = make_instance()
        mark_instance_failed(None, _run(parameters={}), SimpleNamespace(message="boom"))
        assert _state(instance_id) == "running"


def declare_version_2(raw: dict[str, Any]) -> None:
    """flows.yaml raises returns_exchange to `version: 2` and bans one more term."""
    raw["processes"]["returns_exchange"]["version"] = 2
    raw["rules"]["banned_terms"].append("绝无仅有")


class TestDefinitionVersions:
    def test_the_run_reads_the_spec_and_rules_of_the_instance_s_version(self, clean_db: str) -> None:
        seen: list[ProcessRun] = []

        @process_flow("returns_exchange", written_for={1, 2})
        def returns_exchange(run: ProcessRun) -> dict[str, Any]:
            """Record the run."""
            seen.append(run)
            return {}

        old, new = make_instance(), make_instance()
        pin_to_edited_version(new, declare_version_2)
        returns_exchange.fn(old)
        returns_exchange.fn(new)
        assert ["绝无仅有" in run.rule("banned_terms") for run in seen] == [False, True]
        assert [run.definitions.processes["returns_exchange"].version for run in seen] == [1, 2]

    def test_an_instance_on_a_version_the_code_was_not_written_for_fails_at_once_and_says_why(
        self, clean_db: str
    ) -> None:
        body_ran = []

        @process_flow("returns_exchange", written_for={1})
        def returns_exchange(run: ProcessRun) -> dict[str, Any]:
            """Record that the body ran."""
            body_ran.append(run)
            return {}

        instance_id = make_instance()
        version = pin_to_edited_version(instance_id, declare_version_2)
        state = returns_exchange.fn(instance_id)
        assert state.is_failed() and body_ran == []
        assert f"runs on returns_exchange definition version {version} (flows.yaml version: 2)" in state.message
        assert "written for flows.yaml version: 1" in state.message
        assert _state(instance_id) == "failed"
        with session_scope() as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.instance_id == instance_id, AuditEvent.type == "instance.failed")
            )
            assert event.data["error"] == state.message

    @pytest.mark.parametrize("versions", [set(), {0}, {True}, {"1"}])
    def test_written_for_must_name_flows_yaml_versions(self, versions: set) -> None:
        with pytest.raises(TypeError, match=r"written_for must name flows\.yaml versions"):
            process_flow("returns_exchange", written_for=versions)

    def test_every_shipped_flow_declares_the_versions_it_runs(self) -> None:
        # The current version always; older ones only while the code still runs their cases.
        for key, flow in FLOWS.items():
            current = get_definitions().process(key).version
            assert current in flow.fn.written_for and max(flow.fn.written_for) == current, key
