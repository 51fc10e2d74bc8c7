"""A robot's documented rate limit holds: a burst is folded into digests, never dropped, never sent twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import ChannelSend
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import dispatcher
from ecomflow.engine.events.delivery_log import DeliveryStatus, list_deliveries
from tests.engine.events.conftest import PUBLIC_URL, Vendors, channel_messages, deliver_channels
from tests.engine.events.receivers import Receiver
from tests.factories import make_instance, make_task


def open_tasks(count: int) -> list[str]:
    """Open `count` tasks at once (each is a task.created notification)."""
    instance_id = make_instance()
    return [make_task(instance_id=instance_id, round=number) for number in range(1, count + 1)]


def links_received(robot: Receiver) -> list[str]:
    """Return every task link in the accepted messages, as often as it was received."""
    texts = [arrival.body["markdown"]["text"] for arrival in robot.accepted()]
    return [part.split(")")[0] for text in texts for part in text.split(f"({PUBLIC_URL}/ui/tasks/")[1:]]


class TestBurst:
    def test_a_burst_over_twenty_a_minute_is_folded_and_every_task_arrives_once(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        task_ids = open_tasks(30)
        now = utcnow()
        deliver_channels(now=now)
        assert 1 < len(robot.arrivals) <= 20
        assert all(arrival.accepted for arrival in robot.arrivals)
        assert sorted(links_received(robot)) == sorted(task_ids)
        messages = channel_messages()
        assert all(m.delivered_at is not None for m in messages) and len(messages) == 30
        carried = [m for m in messages if m.delivered_with is not None]
        assert carried and {m.delivered_with for m in carried} <= {m.id for m in messages if m.delivered_with is None}
        digest = next(a for a in robot.arrivals if a.body["markdown"]["title"].startswith("ecomflow："))
        assert digest.body["markdown"]["title"] == f"ecomflow：{len(carried) + 1} 条通知"

    def test_a_burst_within_the_limit_goes_one_message_each(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        task_ids = open_tasks(5)
        deliver_channels(now=utcnow())
        assert len(robot.arrivals) == 5 and sorted(links_received(robot)) == sorted(task_ids)
        assert all(m.delivered_with is None for m in channel_messages())

    def test_a_full_window_makes_a_message_wait_without_spending_an_attempt(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        make_task()
        now = utcnow()
        with session_scope() as session:
            session.add_all(
                ChannelSend(channel=channel["name"], sent_at=now - timedelta(seconds=50 - i)) for i in range(20)
            )
        assert deliver_channels(now=now) == 0
        [message] = channel_messages()
        assert robot.arrivals == [] and message.attempts == 0
        assert message.available_at == now + timedelta(seconds=10)
        assert deliver_channels(now=now + timedelta(seconds=10)) == 1
        assert len(robot.accepted()) == 1 and channel_messages()[0].attempts == 1

    def test_a_refused_digest_gives_back_what_it_carried(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk(secret="SEC-wrong")
        configure_channels(channel, max_attempts=5)
        open_tasks(25)
        now = utcnow()
        with session_scope() as session:
            carrier_id = channel_messages()[0].id
        assert dispatcher.deliver_one(carrier_id, now=now) is False
        assert len(robot.arrivals) == 1 and not robot.arrivals[0].accepted
        messages = channel_messages()
        assert all(m.delivered_at is None and m.failed_at is None and m.locked_until is None for m in messages)
        assert {m.attempts for m in messages} <= {0, 1} and sum(m.attempts for m in messages) > 1
        with session_scope() as session:
            pending = list_deliveries(session, status=DeliveryStatus.PENDING, channel_type="dingtalk", limit=200)
        assert len(pending) == 25

    def test_two_dispatchers_together_keep_the_limit_and_send_each_task_once(
        self, clean_db: str, vendors: Vendors, configure_channels: Callable[..., None]
    ) -> None:
        robot, channel = vendors.dingtalk()
        configure_channels(channel)
        task_ids = open_tasks(40)
        now = utcnow()
        threads = [threading.Thread(target=deliver_channels, kwargs={"now": now}) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for step in range(1, 4):  # whatever waited for a slot or a lease
            deliver_channels(now=now + timedelta(minutes=step))
        assert sorted(links_received(robot)) == sorted(task_ids)
        assert all(arrival.accepted for arrival in robot.arrivals)
        with session_scope() as session:
            sends = sorted(session.scalars(ChannelSend.__table__.select().with_only_columns(ChannelSend.sent_at)))
        assert all(len([s for s in sends if first <= s < first + timedelta(minutes=1)]) <= 20 for first in sends)
