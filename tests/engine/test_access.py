"""The one door for access: managers from flows.yaml, starters, four-eyes in the inbox, what a caller may see."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from ecomflow.engine import access
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import DefinitionError, parse_definitions
from ecomflow.engine.errors import Forbidden, FourEyesViolation
from ecomflow.engine.instances.lifecycle import start_instance
from ecomflow.engine.people.principals import SYSTEM, Principal
from ecomflow.engine.tasks.actions import claim_task, complete_task
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox
from ecomflow.engine.tasks.step_tasks import open_task
from tests.engine.definitions.test_processes import make_raw
from tests.factories import make_instance, make_user, return_params

CS = Principal(name="lin", roles=frozenset({"customer_service"}))
WAREHOUSE = Principal(name="wang", roles=frozenset({"warehouse"}))
OWNER = Principal(name="boss", roles=frozenset({"owner"}))


class TestManagersComeFromFlowsYaml:
    def test_the_shipped_managers(self) -> None:
        assert access.manager_roles() == frozenset({"owner", "operations"})
        assert access.is_manager(OWNER) and not access.is_manager(WAREHOUSE)

    def test_a_role_marked_manager_in_flows_yaml_is_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        raw = make_raw()
        raw["roles"]["warehouse"]["manager"] = True
        raw["roles"]["owner"]["manager"] = False
        monkeypatch.setattr(access, "get_definitions", lambda: parse_definitions(raw))
        assert access.is_manager(WAREHOUSE) and not access.is_manager(OWNER)


class TestStarters:
    def test_the_shipped_starters(self) -> None:
        returns = get_definitions().process("returns_exchange")
        assert returns.starters == ("customer_service", "managers")
        assert access.starter_roles(returns) == {"customer_service", "owner", "operations"}
        allowed = {p.name for p in (CS, WAREHOUSE, OWNER) if access.may_start_process(p, returns)}
        assert allowed == {"lin", "boss"}
        plan = get_definitions().process("quarterly_marketing_plan")
        assert not access.may_start_process(CS, plan) and access.may_start_process(OWNER, plan)

    def test_the_system_starts_any_process(self) -> None:
        assert all(access.may_start_process(SYSTEM, spec) for spec in get_definitions().processes.values())

    def test_a_non_starter_is_refused_naming_the_rule_and_nothing_is_written(self, clean_db: str) -> None:
        with (
            pytest.raises(
                Forbidden,
                match=r"starters rule: returns_exchange is started by customer_service, "
                r"operations, owner; wang holds warehouse",
            ),
            session_scope() as session,
        ):
            start_instance(
                session,
                definitions=get_definitions(),
                process_key="returns_exchange",
                business_key="ORD-1",
                params=return_params(),
                principal=WAREHOUSE,
            )
        with session_scope() as session:
            assert session.scalar(select(HumanTask.id)) is None

    @pytest.mark.parametrize(
        ("starters", "problem"),
        [
            (["cashier"], "unknown starter 'cashier'"),
            ([], "expected a non-empty list"),
            ("owner", "expected a non-empty list"),
            (["owner", "owner"], "starters must be unique"),
        ],
    )
    def test_flows_yaml_starters_are_checked(self, starters: object, problem: str) -> None:
        raw = copy.deepcopy(make_raw())
        raw["processes"]["demo"]["starters"] = starters
        with pytest.raises(DefinitionError) as refused:
            parse_definitions(raw)
        assert any("processes.demo.starters" in p and problem in p for p in refused.value.problems), (
            refused.value.problems
        )

    def test_without_starters_only_managers_start(self) -> None:
        demo = parse_definitions(make_raw()).process("demo")
        assert demo.starters == ("managers",)


def _approval_of_inspection(*, inspector: Principal) -> str:
    """Complete an inspection with a deduction as the inspector; return the deduction approval's task id."""
    definitions = get_definitions()
    instance_id = make_instance()
    returns = definitions.process("returns_exchange")
    with session_scope() as session:
        inspect = open_task(session, instance_id=instance_id, step=returns.step("inspect"))
    with session_scope() as session:
        claim_task(session, task_id=inspect.id, principal=inspector)
        complete_task(
            session,
            task_id=inspect.id,
            principal=inspector,
            data={"condition": "damaged", "restock": "no", "deduction": 10},
        )
    with session_scope() as session:
        return open_task(session, instance_id=instance_id, step=returns.step("deduction_approval")).id


class TestFourEyesInTheInbox:
    @pytest.mark.parametrize("sort", ["due", "created"])  # the index-ordered path and the general query
    def test_nobody_is_offered_an_approval_of_their_own_work(self, clean_db: str, sort: str) -> None:
        # A manager who inspected (managers may hold any task) must not approve their own deduction.
        inspector, _ = make_user(name="ops-a", roles=("operations",))
        colleague, _ = make_user(name="ops-b", roles=("operations",))
        approval = _approval_of_inspection(inspector=inspector)
        with session_scope() as session:
            assert session.get(HumanTask, approval).excluded_users == ["ops-a"]
            offered_to = {
                p.name: {t.id for t in list_inbox(session, principal=p, filters=InboxFilter(sort=sort))[0]}
                for p in (inspector, colleague)
            }
        assert approval not in offered_to["ops-a"]
        assert approval in offered_to["ops-b"]

    def test_the_engine_still_refuses_the_claim(self, clean_db: str) -> None:
        inspector, _ = make_user(name="ops-a", roles=("operations",))
        approval = _approval_of_inspection(inspector=inspector)
        with pytest.raises(FourEyesViolation), session_scope() as session:
            claim_task(session, task_id=approval, principal=inspector)

    def test_the_web_rows_do_not_offer_the_claim(self, clean_db: str) -> None:
        inspector, _ = make_user(name="ops-a", roles=("operations",))
        colleague, _ = make_user(name="ops-b", roles=("operations",))
        approval = _approval_of_inspection(inspector=inspector)
        with session_scope() as session:
            task = session.get(HumanTask, approval)
            assert not access.may_be_offered_task(inspector, task)
            assert access.may_be_offered_task(colleague, task)
