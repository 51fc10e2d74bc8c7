"""Access over HTTP: who may start which process, the inbox's four-eyes, and links to instances one may not see."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.children import start_child_once
from ecomflow.engine.tasks.step_tasks import open_task
from tests.api.conftest import Caller, assert_error
from tests.factories import make_instance, return_params


def _start(caller: Caller, process: str = "returns_exchange"):
    return caller.post(
        f"/processes/{process}/instances",
        json={"business_key": f"RET-{uuid.uuid4().hex[:8]}", "params": return_params()},
    )


class TestStarters:
    def test_a_starter_starts_and_anyone_else_gets_403_naming_the_rule(self, login: Callable[..., Caller]) -> None:
        assert _start(login("customer_service")).status_code == 201
        refused = assert_error(_start(login("warehouse", name="wang")), 403, "Forbidden")
        assert refused["detail"].startswith("starters rule: returns_exchange is started by customer_service")
        assert "wang holds warehouse" in refused["detail"]

    def test_the_catalogue_says_who_starts_each_process(self, login: Callable[..., Caller]) -> None:
        by_key = {p["key"]: p for p in login("warehouse").get("/processes").json()}
        assert by_key["returns_exchange"]["starters"] == ["customer_service", "managers"]
        assert not by_key["returns_exchange"]["may_start"]
        owner = {p["key"]: p["may_start"] for p in login("owner").get("/processes").json()}
        assert all(owner.values()) and len(owner) == len(get_definitions().processes)


class TestInboxFourEyes:
    def test_the_author_of_the_work_is_not_offered_its_approval(self, login: Callable[..., Caller]) -> None:
        author, other = login("operations", name="ops-a"), login("operations", name="ops-b")
        instance_id = make_instance()
        returns = get_definitions().process("returns_exchange")
        with session_scope() as session:
            inspect = open_task(session, instance_id=instance_id, step=returns.step("inspect")).id
        assert author.post(f"/tasks/{inspect}/claim").status_code == 200
        done = author.post(
            f"/tasks/{inspect}/complete", json={"data": {"condition": "damaged", "restock": "no", "deduction": 5}}
        )
        assert done.status_code == 200, done.text
        with session_scope() as session:
            approval = open_task(session, instance_id=instance_id, step=returns.step("deduction_approval")).id
        assert approval not in {t["id"] for t in author.get("/tasks").json()["items"]}
        assert approval in {t["id"] for t in other.get("/tasks").json()["items"]}
        # Still visible to them (it is their role's), only not offered; a claim is refused by the rule.
        assert author.get(f"/tasks/{approval}").status_code == 200
        assert_error(author.post(f"/tasks/{approval}/claim"), 409, "FourEyesViolation")


class TestChildLinks:
    def test_children_show_only_what_the_caller_may_see(self, login: Callable[..., Caller]) -> None:
        warehouse, owner = login("warehouse"), login("owner")
        definitions = get_definitions()
        parent_id = make_instance()
        with session_scope() as session:
            open_task(session, instance_id=parent_id, step=definitions.process("returns_exchange").step("inspect"))
            hidden = start_child_once(
                session,
                definitions=definitions,
                parent_id=parent_id,
                step_key="follow",
                index=0,
                process_key="customer_care_copy",
                params={},
            )
            shown = start_child_once(
                session,
                definitions=definitions,
                parent_id=parent_id,
                step_key="follow",
                index=1,
                process_key="returns_exchange",
                params=return_params(),
            )
            open_task(session, instance_id=shown, step=definitions.process("returns_exchange").step("inspect"))
        children = {c["id"] for c in warehouse.get(f"/instances/{parent_id}").json()["children"]}
        assert children == {shown}
        assert {c["id"] for c in owner.get(f"/instances/{parent_id}").json()["children"]} == {hidden, shown}
        assert warehouse.get(f"/instances/{hidden}").status_code == 404
