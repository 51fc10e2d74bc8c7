"""GET /webhooks/deliveries over real HTTP: the delivery log, for managers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from ecomflow.engine.clock import utcnow
from tests.api.conftest import Caller, assert_error, field_names
from tests.engine.events.test_webhooks import WebhookReceiver, dead_url, deliver_webhooks, endpoint, record_on_task
from tests.factories import make_task

DELIVERY_KEYS = {
    "id",
    "delivery_id",
    "endpoint",
    "channel_type",
    "delivered_with",
    "url",
    "event",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
    "failed_at",
    "next_attempt_at",
}


@pytest.fixture
def three_outcomes(
    clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
) -> dict[str, str]:
    """One delivered, one failed and one pending delivery; return the receiver URLs by endpoint name."""
    receiver, dead = start_receiver(), dead_url()
    configure_webhooks(endpoint("im", receiver.url), endpoint("pager", dead, events=("task.created",)), max_attempts=2)
    task_id = make_task()
    start = utcnow()
    deliver_webhooks(now=start)
    deliver_webhooks(now=start + timedelta(hours=1))
    record_on_task("task.overdue", task_id=task_id)
    return {"im": receiver.url, "pager": dead}


def _items(caller: Caller, **params: str | int) -> list[dict]:
    response = caller.get("/webhooks/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


class TestDeliveryLog:
    def test_a_manager_sees_every_outcome_newest_first(
        self, login: Callable[..., Caller], three_outcomes: dict[str, str]
    ) -> None:
        items = _items(login("operations"))
        assert all(set(item) == DELIVERY_KEYS for item in items)
        summary = [(i["endpoint"], i["url"], i["event"], i["status"], i["attempts"]) for i in items]
        assert summary == [
            ("im", three_outcomes["im"], "task.overdue", "pending", 0),
            ("pager", three_outcomes["pager"], "task.created", "failed", 2),
            ("im", three_outcomes["im"], "task.created", "delivered", 1),
        ]
        pending, failed, delivered = items
        assert pending["next_attempt_at"] is not None and pending["delivered_at"] is None
        assert failed["failed_at"] is not None and failed["next_attempt_at"] is None
        assert "ConnectError" in failed["last_error"] and "given up after 2 attempts" in failed["last_error"]
        assert delivered["delivered_at"] is not None and delivered["last_error"] is None
        assert datetime.fromisoformat(delivered["delivered_at"]) >= datetime.fromisoformat(delivered["created_at"])
        assert len({i["delivery_id"] for i in items}) == 3

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"status": "failed"}, [("pager", "task.created")]),
            ({"status": "pending"}, [("im", "task.overdue")]),
            ({"status": "delivered", "event": "task.created"}, [("im", "task.created")]),
            ({"event": "task.created"}, [("pager", "task.created"), ("im", "task.created")]),
            ({"event": "task.escalated"}, []),
            ({"limit": 1}, [("im", "task.overdue")]),
        ],
    )
    def test_filters(
        self, login: Callable[..., Caller], three_outcomes: dict[str, str], params: dict, expected: list
    ) -> None:
        assert [(i["endpoint"], i["event"]) for i in _items(login("owner"), **params)] == expected

    def test_other_roles_are_refused(self, login: Callable[..., Caller], three_outcomes: dict[str, str]) -> None:
        assert_error(login("warehouse").get("/webhooks/deliveries"), 403, "Forbidden")

    @pytest.mark.parametrize(
        ("params", "field"), [({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"status": "lost"}, "status")]
    )
    def test_bad_queries_name_the_parameter(self, login: Callable[..., Caller], params: dict, field: str) -> None:
        body = assert_error(login("operations").get("/webhooks/deliveries", params=params), 422, "ValidationFailed")
        assert field_names(body) == [field]
