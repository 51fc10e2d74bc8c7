"""The heat view's numbers: per step, the cases open there now and the median of how long they have waited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.timers import arm_timer
from ecomflow.engine.reports.step_heat import StepHeat, measure_step_heat
from ecomflow.engine.tasks.step_tasks import open_task
from tests.factories import add_task_row, make_instance, make_task

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)


def heat(process: str = "returns_exchange") -> dict[str, StepHeat]:
    with session_scope() as session:
        return measure_step_heat(session, process_key=process, now=NOW)


class TestStepHeat:
    def test_open_tasks_are_counted_per_step_with_their_median_wait(self, clean_db: str) -> None:
        for hours in (1, 3, 8):
            make_task(step="inspect", now=NOW - timedelta(hours=hours))
        make_task(step="cs_review", now=NOW - timedelta(minutes=30))
        assert heat() == {
            "inspect": StepHeat(step_key="inspect", open=3, median_wait=timedelta(hours=3)),
            "cs_review": StepHeat(step_key="cs_review", open=1, median_wait=timedelta(minutes=30)),
        }

    def test_finished_tasks_and_other_processes_do_not_count(self, clean_db: str) -> None:
        done = make_instance()
        add_task_row(instance_id=done, created_at=NOW - timedelta(hours=5), state="completed", completed_at=NOW)
        inquiry = make_instance(process="presales_order", params={"customer": "小王", "question": "有M码吗？"})
        make_task(process="presales_order", step="answer_inquiry", instance_id=inquiry, now=NOW - timedelta(hours=1))
        assert heat() == {}
        assert heat("presales_order")["answer_inquiry"].open == 1

    def test_a_parallel_step_counts_each_case_once_and_armed_timers_count_as_waiting(self, clean_db: str) -> None:
        plan = make_instance(process="quarterly_marketing_plan", params={"quarter": "2026-Q1"})
        step = get_definitions().process("quarterly_marketing_plan").step("department_strategies")
        with session_scope() as session:
            for role in step.roles:
                open_task(session, instance_id=plan, step=step, lane=role, now=NOW - timedelta(hours=2))
        assert heat("quarterly_marketing_plan")["department_strategies"].open == 1
        page = make_instance(process="page_design", params={})
        with session_scope() as session:
            arm_timer(
                session,
                instance_id=page,
                step_key="go_live",
                round=1,
                fire_at=NOW + timedelta(days=1),
                now=NOW - timedelta(days=1),
            )
        assert heat("page_design")["go_live"] == StepHeat(step_key="go_live", open=1, median_wait=timedelta(days=1))
