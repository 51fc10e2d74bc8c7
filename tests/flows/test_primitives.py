"""Flow primitives that run without a Prefect server: marking a failed run's instance."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.instances.lifecycle import get_instance, record_flow_run
from ecomflow.flows.primitives import mark_instance_failed
from tests.factories import make_instance


def _run(*, parameters: dict, run_id: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=run_id or str(uuid.uuid4()), parameters=parameters)


class TestMarkInstanceFailed:
    def test_an_instance_started_over_the_api_is_marked_failed(self, clean_db: str) -> None:
        instance_id = make_instance()
        mark_instance_failed(None, _run(parameters={"instance_id": instance_id}), SimpleNamespace(message="boom"))
        with session_scope() as session:
            assert get_instance(session, instance_id).state == "failed"

    def test_a_scheduled_run_finds_its_instance_by_flow_run(self, clean_db: str) -> None:
        instance_id, run_id = make_instance(), str(uuid.uuid4())
        with session_scope() as session:
            record_flow_run(session, instance_id=instance_id, flow_run_id=run_id)
        mark_instance_failed(None, _run(parameters={}, run_id=run_id), SimpleNamespace(message="boom"))
        with session_scope() as session:
            assert get_instance(session, instance_id).state == "failed"

    def test_a_run_without_an_instance_changes_nothing(self, clean_db: str) -> None:
        instance_id = make_instance()
        mark_instance_failed(None, _run(parameters={}), SimpleNamespace(message="boom"))
        with session_scope() as session:
            assert get_instance(session, instance_id).state == "running"
