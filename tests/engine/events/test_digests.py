"""The morning digest: at 09:00 Asia/Shanghai each role gets one message of its overdue and at-risk work, once a day."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events.digests import queue_daily_digest_if_due
from ecomflow.engine.sla.sweeper import sweep_once
from tests.engine.events.conftest import PUBLIC_URL, Vendors, channel_messages, deliver_channels, routes_to
from tests.factories import make_instance, make_task

# Monday 7 December 2026, a working day; 09:05 in Shanghai is 01:05 UTC.
MONDAY_0905 = datetime(2026, 12, 7, 1, 5, tzinfo=UTC)


def late_task(*, step: str, overdue: bool, instance_id: str, round: int = 1) -> str:
    """Open a task that is overdue (due yesterday) or at risk (due tomorrow, forecast to miss it) at MONDAY_0905."""
    task_id = make_task(step=step, instance_id=instance_id, round=round)
    due = MONDAY_0905 + (timedelta(days=-1) if overdue else timedelta(days=1))
    with session_scope() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task_id).values(due_at=due, at_risk=not overdue))
    return task_id


@pytest.fixture
def late_work(clean_db: str) -> dict[str, list[str]]:
    """Two overdue and one at-risk warehouse tasks, one on-time customer-service task."""
    instance_id = make_instance()
    warehouse = [
        late_task(step="inspect", overdue=True, instance_id=instance_id),
        late_task(step="reship", overdue=True, instance_id=instance_id),
        late_task(step="inspect", overdue=False, instance_id=make_instance()),
    ]
    on_time = make_task(step="cs_review", instance_id=instance_id)
    with session_scope() as session:
        session.execute(update(HumanTask).where(HumanTask.id == on_time).values(due_at=MONDAY_0905 + timedelta(days=3)))
    return {"warehouse": warehouse, "on_time": [on_time]}


def digests() -> list:
    return [m for m in channel_messages() if m.payload["event"] == "daily_digest"]


class TestDailyDigest:
    def test_each_role_with_late_work_gets_one_message_listing_it(
        self, late_work: dict[str, list[str]], vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel, routes=[routes_to(channel["name"], events=["daily_digest"])])
        assert queue_daily_digest_if_due(now=MONDAY_0905) == 1
        [message] = digests()
        assert (message.payload["notice"]["overdue"], message.payload["notice"]["at_risk"]) == (2, 1)
        assert deliver_channels(now=MONDAY_0905 + timedelta(minutes=1)) == 1
        [arrival] = robot.accepted()
        text = arrival.body["markdown"]["text"]
        assert arrival.body["markdown"]["title"].endswith("逾期 2 项，有逾期风险 1 项")
        assert all(f"{PUBLIC_URL}/ui/tasks/{task_id}" in text for task_id in late_work["warehouse"])
        assert late_work["on_time"][0] not in text
        assert f"{PUBLIC_URL}/ui?role=warehouse" in text

    def test_it_is_made_once_a_day_whatever_the_number_of_sweepers(
        self, late_work: dict[str, list[str]], vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        _, channel = vendors.dingtalk()
        configure_channels(channel)
        sweepers = [
            threading.Thread(target=sweep_once, kwargs={"now": MONDAY_0905, "forecast": False}) for _ in range(3)
        ]
        for sweeper in sweepers:
            sweeper.start()
        for sweeper in sweepers:
            sweeper.join()
        assert sweep_once(now=MONDAY_0905 + timedelta(hours=1), forecast=False).digest_messages == 0
        assert [m.payload["notice"]["role"] for m in digests()] == ["仓储物流"]

    @pytest.mark.parametrize(
        "now",
        [
            MONDAY_0905 - timedelta(minutes=10),  # 08:55
            MONDAY_0905 + timedelta(hours=3),  # 12:05: a missed morning is not made up in the afternoon
            MONDAY_0905 - timedelta(days=1),  # Sunday
        ],
        ids=["before-nine", "after-noon", "sunday"],
    )
    def test_none_outside_the_morning_of_a_working_day(
        self,
        late_work: dict[str, list[str]],
        vendors: Vendors,
        configure_channels: Callable[..., None],
        now: datetime,
    ) -> None:
        _, channel = vendors.dingtalk()
        configure_channels(channel)
        assert queue_daily_digest_if_due(now=now) == 0
        assert digests() == []

    def test_a_long_list_is_cut_to_what_the_robot_takes_and_counts_the_rest(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.wecom()
        configure_channels(channel, routes=[routes_to(channel["name"], events=["daily_digest"])])
        instance_id = make_instance()
        for round in range(1, 31):
            late_task(step="inspect", overdue=True, instance_id=instance_id, round=round)
        queue_daily_digest_if_due(now=MONDAY_0905)
        deliver_channels(now=MONDAY_0905 + timedelta(minutes=1))
        [arrival] = robot.accepted()
        content = arrival.body["markdown"]["content"]
        shown = content.count("/ui/tasks/")
        assert 0 < shown < 30 and f"另有 {30 - shown} 项，见收件箱" in content
        assert len(content.encode()) <= 4096
