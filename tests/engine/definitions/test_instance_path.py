"""One instance's path over its own version: done, current (who, since when), skipped and pending steps, rounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.instance_path import InstancePath, trace_path
from ecomflow.engine.definitions.versions import spec_of_instance
from ecomflow.engine.instances.auto_step_results import result_key, store_result
from ecomflow.engine.instances.children import start_child_once
from ecomflow.engine.instances.timers import arm_timer
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import claim_task, complete_task
from ecomflow.engine.tasks.step_tasks import open_task
from ecomflow.sample_data import sample_object
from tests.factories import make_instance, make_task, pin_to_edited_version, step_of

RETURNS = get_definitions().process("returns_exchange")
WU = Principal(name="wu", roles=frozenset({"warehouse"}))
LIN = Principal(name="lin", roles=frozenset({"customer_service"}))
ZHOU = Principal(name="zhou", roles=frozenset({"operations"}))


def path_of(instance_id: str) -> InstancePath:
    with session_scope() as session:
        instance = session.get(ProcessInstance, instance_id)
        return trace_path(session, instance, spec_of_instance(session, instance))


def states(path: InstancePath) -> dict[str, str]:
    return {step.key: step.state for step in path.steps}


def do(task_id: str, who: Principal, data: dict[str, Any] | None = None) -> None:
    with session_scope() as session:
        task = claim_task(session, task_id=task_id, principal=who)
        form = RETURNS.step(task.step_key).form if task.process_key == "returns_exchange" else None
        complete_task(session, task_id=task_id, principal=who, data=data or sample_object(dict(form.json_schema)))


def auto_done(instance_id: str, step_key: str, round: int = 1) -> None:
    with session_scope() as session:
        store_result(
            session, key=result_key(instance_id, step_key, round), instance_id=instance_id, step_key=step_key, result={}
        )


class TestStates:
    def test_done_current_skipped_and_pending_on_a_return_waiting_for_its_parcel(self, clean_db: str) -> None:
        instance_id = make_instance()
        auto_done(instance_id, "policy_check")
        do(make_task(instance_id=instance_id, step="cs_review"), LIN, {"decision": "approve"})
        parcel = make_task(instance_id=instance_id, step="await_parcel")
        with session_scope() as session:
            claim_task(session, task_id=parcel, principal=LIN)

        path = path_of(instance_id)

        assert states(path) == {
            "policy_check": "done",
            "cs_review": "done",
            "goodwill_approval": "skipped",  # its condition did not hold: a later step was reached
            "platform_parcel": "skipped",
            "await_parcel": "current",
            "inspect": "pending",
            "deduction_approval": "pending",
            "restock": "pending",
            "refund": "pending",
            "reship": "pending",
            "exchange_out": "pending",
            "check_rating": "pending",
            "follow_up": "pending",
        }
        [holder] = path.step("await_parcel").holders
        assert (holder.task_id, holder.assignee, holder.role) == (parcel, "lin", "customer_service")
        assert utcnow() - holder.since < timedelta(minutes=1)

    def test_a_task_in_the_queue_has_no_assignee_and_waits_since_it_opened(self, clean_db: str) -> None:
        task_id = make_task(step="cs_review")
        [holder] = path_of(_instance_of(task_id)).step("cs_review").holders
        with session_scope() as session:
            created = session.get(HumanTask, task_id).created_at
        assert (holder.assignee, holder.since) == (None, created)

    def test_rounds_of_a_reject_loop_are_counted(self, clean_db: str) -> None:
        instance_id = make_instance()
        do(
            make_task(instance_id=instance_id, step="inspect"),
            WU,
            {"condition": "damaged", "restock": "no", "deduction": 5},
        )
        do(
            make_task(instance_id=instance_id, step="deduction_approval"),
            ZHOU,
            {"decision": "reject", "comment": "照片不清楚"},
        )
        make_task(instance_id=instance_id, step="inspect", round=2)
        path = path_of(instance_id)
        assert (path.step("inspect").state, path.step("inspect").rounds) == ("current", 2)
        assert (path.step("deduction_approval").state, path.step("deduction_approval").rounds) == ("done", 1)

    def test_an_ended_instance_skipped_every_step_it_never_reached(self, clean_db: str) -> None:
        instance_id = make_instance()
        auto_done(instance_id, "policy_check")
        do(make_task(instance_id=instance_id, step="cs_review"), LIN, {"decision": "reject", "comment": "不符合"})
        with session_scope() as session:
            session.get(ProcessInstance, instance_id).state = "completed"
        found = states(path_of(instance_id))
        assert found["cs_review"] == "done"
        assert {key for key, state in found.items() if state == "skipped"} == set(found) - {"policy_check", "cs_review"}


class TestOtherKinds:
    def test_parallel_lanes_timers_and_children(self, clean_db: str) -> None:
        plan = make_instance(process="quarterly_marketing_plan", params={"quarter": "2026-Q1"})
        spec = get_definitions().process("quarterly_marketing_plan")
        strategies = spec.step("department_strategies")
        with session_scope() as session:
            tasks = {
                role: open_task(session, instance_id=plan, step=strategies, lane=role).id
                for role in ("product", "visual")
            }
        do_lane = Principal(name="pm", roles=frozenset({"product"}))
        with session_scope() as session:
            claim_task(session, task_id=tasks["product"], principal=do_lane)
            complete_task(
                session,
                task_id=tasks["product"],
                principal=do_lane,
                data=sample_object(dict(strategies.form.json_schema)),
            )
        path = path_of(plan)
        assert path.step("department_strategies").state == "current"
        assert dict(path.step("department_strategies").lane_states) == {"product": "done", "visual": "current"}

        page = make_instance(process="page_design", params={})
        fire_at = utcnow() + timedelta(days=2)
        with session_scope() as session:
            arm_timer(session, instance_id=page, step_key="go_live", round=1, fire_at=fire_at, now=utcnow())
        go_live = path_of(page).step("go_live")
        assert (go_live.state, go_live.waits_until) == ("current", fire_at)

        with session_scope() as session:
            child = start_child_once(
                session,
                definitions=get_definitions(),
                parent_id=plan,
                step_key="campaign_plans",
                index=0,
                process_key="themed_campaign_plan",
                params={},
            )
        [started] = path_of(plan).step("campaign_plans").children
        assert (started.id, started.process_key) == (child, "themed_campaign_plan")

    def test_tasks_of_steps_the_version_lacks_are_listed_apart(self, clean_db: str) -> None:
        task_id = make_task(step="inspect")

        def rename(raw: dict[str, Any]) -> None:
            step_of(raw, "returns_exchange", "inspect")["key"] = "inspect_parcel"
            approval = step_of(raw, "returns_exchange", "deduction_approval")
            approval["reject_to"] = approval["approves"] = "inspect_parcel"

        instance_id = _instance_of(task_id)
        pin_to_edited_version(instance_id, rename)
        path = path_of(instance_id)
        assert path.unplaced == ("inspect",) and "inspect" not in states(path)


def _instance_of(task_id: str) -> str:
    with session_scope() as session:
        return session.get(HumanTask, task_id).instance_id
