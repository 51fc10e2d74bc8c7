"""Process maps over HTTP: a process's map and an instance's path as SVG, and the heat view's numbers (managers)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.tasks.actions import claim_task
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import make_instance, make_task

SVG_NS = "{http://www.w3.org/2000/svg}"


def steps_of(svg_text: str) -> dict[str, str]:
    svg = ET.fromstring(svg_text)
    return {g.get("data-step"): g.get("data-state") for g in svg.iter(f"{SVG_NS}g") if g.get("data-step")}


def instance_of(task_id: str) -> str:
    with session_scope() as session:
        return session.get(HumanTask, task_id).instance_id


class TestProcessDiagram:
    def test_any_user_gets_the_map_as_svg_in_either_language(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse")
        spec = get_definitions().process("product_photo_shoot")
        for lang, label in (("zh", spec.step("retouch").label.zh), ("en", spec.step("retouch").label.en)):
            answer = wu.get("/processes/product_photo_shoot/diagram.svg", params={"lang": lang})
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
            assert list(steps_of(answer.text)) == [s.key for s in spec.steps]
            assert label in answer.text

    def test_an_unknown_process_or_language_is_named(self, login: Callable[..., Caller], anonymous) -> None:
        wu = login("warehouse")
        assert_error(wu.get("/processes/no_such/diagram.svg"), 404, "UnknownProcess")
        body = assert_error(
            wu.get("/processes/page_design/diagram.svg", params={"lang": "fr"}), 422, "ValidationFailed"
        )
        assert field_names(body) == ["lang"]
        assert_error(anonymous.get("/processes/page_design/diagram.svg"), 401, "Unauthorized")


class TestInstanceDiagram:
    def test_the_path_shows_where_the_instance_stands(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse", name="wu")
        task_id = make_task(step="inspect")
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=Principal(name="wu", roles=frozenset({"warehouse"})))
        answer = wu.get(f"/instances/{instance_of(task_id)}/diagram.svg", params={"lang": "en"})
        assert answer.status_code == 200, answer.text
        states = steps_of(answer.text)
        assert states["inspect"] == "current" and states["refund"] == "pending"
        assert "held by wu since" in answer.text and f"/ui/tasks/{task_id}" in answer.text

    def test_an_instance_the_caller_may_not_see_does_not_exist_for_them(self, login: Callable[..., Caller]) -> None:
        designer = login("visual")
        instance_id = instance_of(make_task(step="inspect"))
        assert_error(designer.get(f"/instances/{instance_id}/diagram.svg"), 404, "NotFound")

    def test_who_holds_a_task_the_caller_may_not_see_is_not_named(self, login: Callable[..., Caller]) -> None:
        starter = login("customer_service", name="lin")
        instance_id = make_instance(actor="lin")
        task_id = make_task(step="inspect", instance_id=instance_id)
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=Principal(name="wu", roles=frozenset({"warehouse"})))
        answer = starter.get(f"/instances/{instance_id}/diagram.svg", params={"lang": "en"})
        assert answer.status_code == 200
        assert steps_of(answer.text)["inspect"] == "current"
        assert "wu" not in answer.text and task_id not in answer.text and "in progress since" in answer.text


class TestHeat:
    def test_managers_get_open_counts_and_median_waits_per_step(self, login: Callable[..., Caller]) -> None:
        boss = login("operations")
        for hours in (2, 4):
            make_task(step="inspect", now=utcnow() - timedelta(hours=hours))
        answer = boss.get("/processes/returns_exchange/heat")
        assert answer.status_code == 200, answer.text
        rows = {row["step"]: row for row in answer.json()}
        assert list(rows) == [s.key for s in get_definitions().process("returns_exchange").steps]
        assert rows["inspect"]["open"] == 2 and abs(rows["inspect"]["median_wait_seconds"] - 3 * 3600) < 60
        assert rows["refund"] == {"step": "refund", "open": 0, "median_wait_seconds": None}

    def test_others_are_refused_and_an_unknown_process_is_not_found(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse")
        assert_error(wu.get("/processes/returns_exchange/heat"), 403, "Forbidden")
        assert_error(login("owner").get("/processes/nope/heat"), 404, "UnknownProcess")
