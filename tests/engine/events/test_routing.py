"""Routing: the notifications file, which events reach which channel per role and process, and what a message holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import PACKAGED_NOTIFICATIONS
from ecomflow.engine.db.models import HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.errors import RoutingError
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.events.routing_file import load_routing, parse_routing
from ecomflow.engine.instances.lifecycle import InstanceState, get_instance, set_instance_state
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.tasks.actions import add_comment, claim_task, complete_task
from tests.engine.events.conftest import Vendors, channel_messages, deliver_channels, routes_to
from tests.factories import make_instance, make_task, make_user

VALID = {"version": 1, "routes": [{"events": ["task.created"], "channels": ["team"]}]}


class TestNotificationsFile:
    def test_the_shipped_file_is_valid_and_routes_every_kind_of_event(self) -> None:
        routing = load_routing(PACKAGED_NOTIFICATIONS, get_definitions())
        routed = {event for route in routing.routes for event in route.events}
        assert routed == {
            "task.created",
            "task.assigned",
            "task.due_soon",
            "task.overdue",
            "task.escalated",
            "instance.completed",
            "instance.failed",
            "report.daily",
            "daily_digest",
        }
        assert (routing.language, routing.digest.at.isoformat()) == ("zh", "09:00:00")

    def test_every_problem_is_reported_with_its_location(self) -> None:
        raw = {
            "version": 1,
            "language": "fr",
            "daily_digest": {"at": "9h", "until": "08:00"},
            "routes": [
                {"events": ["task.created", "task.finished"], "channels": ["team"]},
                {"events": ["task.overdue"], "channels": [], "roles": ["intern"], "processes": ["no_such"]},
                {"events": ["report.daily"], "channels": ["team"], "when": "always"},
            ],
        }
        with pytest.raises(RoutingError) as refused:
            parse_routing(raw, get_definitions())
        problems = "\n".join(refused.value.problems)
        for located in (
            "language: expected one of zh, en, got 'fr'",
            "daily_digest.at: expected a local time as HH:MM, got '9h'",
            "routes[0].events[1]: unknown event 'task.finished'",
            "routes[1].channels: expected a non-empty list of channel names",
            "routes[1].roles[0]: unknown role 'intern'",
            "routes[1].processes[0]: unknown process 'no_such'",
            "routes[2].when: unknown key",
        ):
            assert located in problems

    def test_a_file_error_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "notifications.yaml"
        path.write_text(yaml.safe_dump({**VALID, "version": 2}), encoding="utf-8")
        with pytest.raises(RoutingError) as refused:
            load_routing(path, get_definitions())
        assert refused.value.problems == [f"{path}: version: expected 1, got 2"]

    def test_a_route_matches_its_roles_and_processes_only(self) -> None:
        raw = {
            "version": 1,
            "routes": [
                {"events": ["task.created"], "channels": ["wh"], "roles": ["warehouse"]},
                {"events": ["task.created"], "channels": ["returns"], "processes": ["returns_exchange"]},
                {"events": ["task.created", "report.daily"], "channels": ["all"]},
            ],
        }
        routing = parse_routing(raw, get_definitions())
        warehouse_return = routing.channels_for(
            event="task.created", roles=frozenset({"warehouse"}), process="returns_exchange"
        )
        cs_presales = routing.channels_for(
            event="task.created", roles=frozenset({"customer_service"}), process="presales_order"
        )
        report = routing.channels_for(event="report.daily", roles=frozenset(), process=None)
        assert (warehouse_return, cs_presales, report) == (("wh", "returns", "all"), ("all",), ("all",))


class TestQueueing:
    def test_nothing_is_queued_without_channels(self, clean_db: str) -> None:
        make_task()
        assert channel_messages() == []

    def test_each_channel_gets_the_events_of_its_roles(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        _, warehouse = vendors.dingtalk("warehouse-group")
        _, service = vendors.wecom("service-group")
        configure_channels(
            warehouse,
            service,
            routes=[
                routes_to("warehouse-group", roles=["warehouse"]),
                routes_to("service-group", roles=["customer_service"]),
            ],
        )
        make_task(step="inspect")  # warehouse
        make_task(step="cs_review")  # customer service
        queued = [(m.payload["channel"], m.payload["notice"]["step"]) for m in channel_messages()]
        steps = get_definitions().process("returns_exchange")
        assert queued == [
            ("warehouse-group", steps.step("inspect").label.zh),
            ("service-group", steps.step("cs_review").label.zh),
        ]

    @pytest.mark.parametrize(
        ("audit_type", "data", "event"),
        [
            ("task.reminded", {"reason": "due_soon"}, "task.due_soon"),
            ("task.reminded", {}, "task.reminded"),
            ("task.overdue", {}, "task.overdue"),
            ("task.escalated", {"to": "operations", "release": False}, "task.escalated"),
            ("task.delegated", {}, "task.assigned"),
        ],
    )
    def test_task_events_become_their_notifications(
        self,
        clean_db: str,
        vendors: Vendors,
        configure_channels: Callable[..., None],
        audit_type: str,
        data: dict,
        event: str,
    ) -> None:
        task_id = make_task()
        _, channel = vendors.dingtalk()
        configure_channels(channel)
        with session_scope() as session:
            instance_id = session.get(HumanTask, task_id).instance_id
            record_event(
                session, type=audit_type, actor=SYSTEM_ACTOR, instance_id=instance_id, task_id=task_id, data=data
            )
        [message] = channel_messages()
        assert message.payload["event"] == event
        if event == "task.escalated":
            assert message.payload["notice"]["escalated_to"] == get_definitions().roles["operations"].label.zh

    @pytest.mark.parametrize("state", [InstanceState.COMPLETED, InstanceState.FAILED])
    def test_an_instance_that_ends_is_announced(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None], state: InstanceState
    ) -> None:
        instance_id = make_instance()
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        with session_scope() as session:
            set_instance_state(session, instance=get_instance(session, instance_id), state=state)
            business_key = session.get(ProcessInstance, instance_id).business_key
        assert deliver_channels(now=utcnow()) == 1
        [arrival] = robot.accepted()
        expected = "流程已完成" if state is InstanceState.COMPLETED else "流程失败"
        process = get_definitions().process("returns_exchange").label.zh
        assert arrival.body["markdown"]["title"] == f"【{expected}】{process} {business_key}"
        assert f"/ui/instances/{instance_id}" in arrival.body["markdown"]["text"]

    def test_messages_are_in_english_when_the_file_says_so(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel, language="en")
        make_task()
        deliver_channels(now=utcnow())
        [arrival] = robot.accepted()
        assert arrival.body["markdown"]["title"].startswith("[New task] ")
        assert (
            "(Asia/Shanghai)" in arrival.body["markdown"]["text"]
            and "Open the task" in arrival.body["markdown"]["text"]
        )


class TestPrivacy:
    def test_no_message_holds_form_data_parameters_or_comments(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        dingtalk, dingtalk_channel = vendors.dingtalk()
        wecom, wecom_channel = vendors.wecom()
        feishu, feishu_channel = vendors.feishu()
        configure_channels(dingtalk_channel, wecom_channel, feishu_channel)
        worker, _ = make_user(name="wu", roles=("customer_service",))
        task_id = make_task(step="await_parcel")
        with session_scope() as session:
            task = session.get(HumanTask, task_id)
            instance = session.get(ProcessInstance, task.instance_id)
            business_key, params = instance.business_key, dict(instance.params)
        with session_scope() as session:
            claim_task(session, task_id=task_id, principal=worker)
        with session_scope() as session:
            add_comment(
                session, task_id=task_id, principal=worker, text="顾客张三，手机 13912345678，地址 杭州西湖路 1 号"
            )
        with session_scope() as session:
            complete_task(
                session,
                task_id=task_id,
                principal=worker,
                data={"return_tracking_no": "SF9876543210", "carrier": "顺丰速运", "return_shipping_cost": 12},
            )
        with session_scope() as session:
            set_instance_state(session, instance=get_instance(session, task.instance_id), state=InstanceState.COMPLETED)
        deliver_channels(now=utcnow())
        stored = json.dumps([m.payload for m in channel_messages()], ensure_ascii=False)
        received = json.dumps([a.body for r in (dingtalk, wecom, feishu) for a in r.arrivals], ensure_ascii=False)
        # task.created and instance.completed, to each of the three robots (a claim or a completion notifies nobody)
        assert len(channel_messages()) == 6
        private = [
            params["order_id"],
            params["reason"],
            params["sku"],
            "张三",
            "13912345678",
            "西湖路",
            "SF9876543210",
            "顺丰",
        ]
        for text in (stored, received):
            assert [value for value in private if value in text] == []
            assert business_key in text
