"""GET /reports/kpi over HTTP: who sees which rows, how the range is read, and what is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ecomflow.engine.clock import utcnow
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import add_task_row, make_instance

KPI = "/reports/kpi"
ROW_KEYS = {
    "key",
    "done",
    "cycle_seconds",
    "queue_seconds",
    "claimed_seconds",
    "working_seconds",
    "on_time_rate",
    "rework_rate",
    "open",
    "overdue",
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def team(login: Callable[..., Caller]) -> dict[str, Caller]:
    """A manager and two staff, and what they did on 2 March 2025 (Shanghai) and the day after."""
    people = {"boss": login("operations"), "wu": login("warehouse"), "li": login("customer_service")}
    wu, li = people["wu"].name, people["li"].name
    instance_id = make_instance()
    # 2 March in Shanghai is [1 March 16:00Z, 2 March 16:00Z).
    add_task_row(
        instance_id=instance_id,
        state="completed",
        created_at=utc("2025-03-02T01:00"),
        events=(("task.claimed", utc("2025-03-02T02:00")),),
        completed_at=utc("2025-03-02T05:00"),
        completed_by=wu,
        assignee=wu,
        due_at=utc("2025-03-02T06:00"),
    )
    add_task_row(
        instance_id=instance_id,
        role="customer_service",
        process="page_design",
        state="completed",
        round=2,
        created_at=utc("2025-03-02T01:00"),
        events=(("task.claimed", utc("2025-03-02T01:30")),),
        completed_at=utc("2025-03-02T03:00"),
        completed_by=li,
        assignee=li,
    )
    # 09:00 on 3 March in Shanghai.
    add_task_row(
        instance_id=instance_id,
        state="completed",
        created_at=utc("2025-03-03T00:00"),
        events=(("task.claimed", utc("2025-03-03T00:30")),),
        completed_at=utc("2025-03-03T01:00"),
        completed_by=wu,
        assignee=wu,
    )
    return people


def kpi(caller: Caller, **params: str) -> httpx.Response:
    return caller.get(KPI, params=params)


class TestWhoSeesWhat:
    def test_managers_see_every_role_and_a_total(self, team: dict[str, Caller]) -> None:
        response = kpi(team["boss"], **{"from": "2025-03-02", "to": "2025-03-02", "group_by": "role"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["group_by"] == "role" and body["timezone"] == "Asia/Shanghai"
        assert (body["start"], body["end"]) == ("2025-03-01T16:00:00Z", "2025-03-02T16:00:00Z")
        assert [(row["key"], row["done"]) for row in body["rows"]] == [("customer_service", 1), ("warehouse", 1)]
        assert set(body["rows"][0]) == ROW_KEYS
        warehouse = body["rows"][1]
        # Created 01:00, claimed 02:00, done 05:00, due 06:00.
        assert warehouse["cycle_seconds"] == {"p50": 4 * 3600.0, "p90": 4 * 3600.0}
        assert warehouse["queue_seconds"]["p50"] == 3600.0 and warehouse["working_seconds"]["p50"] == 3 * 3600.0
        assert (warehouse["on_time_rate"], warehouse["rework_rate"]) == (1.0, 0.0)
        total = body["total"]
        # li's task was a second round and had no due time.
        assert (total["key"], total["done"], total["on_time_rate"], total["rework_rate"]) == ("total", 2, 1.0, 0.5)

    def test_staff_get_their_own_row_only(self, team: dict[str, Caller]) -> None:
        wu = team["wu"]
        body = kpi(wu, **{"from": "2025-03-02", "to": "2025-03-03"}).json()
        assert body["group_by"] == "person"
        assert [(row["key"], row["done"]) for row in body["rows"]] == [(wu.name, 2)]
        assert body["total"]["done"] == 2

    @pytest.mark.parametrize("group_by", ["role", "process"])
    def test_staff_may_not_group_by_role_or_process(self, team: dict[str, Caller], group_by: str) -> None:
        body = assert_error(kpi(team["li"], group_by=group_by), 403, "Forbidden")
        assert "only managers" in body["detail"]

    def test_anonymous_is_refused(self, team: dict[str, Caller], anonymous: httpx.Client) -> None:
        assert_error(anonymous.get(KPI), 401, "Unauthorized")


class TestRange:
    def test_to_as_a_date_takes_its_whole_day(self, team: dict[str, Caller]) -> None:
        boss = team["boss"]
        one_day = kpi(boss, **{"from": "2025-03-02", "to": "2025-03-02"}).json()
        two_days = kpi(boss, **{"from": "2025-03-02", "to": "2025-03-03"}).json()
        assert (one_day["total"]["done"], two_days["total"]["done"]) == (2, 3)

    def test_aware_date_times_bound_the_range_exactly(self, team: dict[str, Caller]) -> None:
        body = kpi(
            team["boss"], **{"from": "2025-03-02T10:30:00+08:00", "to": "2025-03-02T04:00:00Z", "group_by": "process"}
        ).json()
        # [02:30Z, 04:00Z) holds li's completion at 03:00Z only; at 04:00Z wu's return task is still open.
        assert [(row["key"], row["done"], row["open"]) for row in body["rows"]] == [
            ("page_design", 1, 0),
            ("returns_exchange", 0, 1),
        ]

    def test_default_is_the_last_seven_days(self, team: dict[str, Caller]) -> None:
        wu = team["wu"]
        now = utcnow()
        add_task_row(
            instance_id=make_instance(),
            state="completed",
            created_at=now - timedelta(hours=3),
            events=(("task.claimed", now - timedelta(hours=2)),),
            completed_at=now - timedelta(hours=1),
            completed_by=wu.name,
            assignee=wu.name,
        )
        body = kpi(wu).json()
        start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
        assert end - start == timedelta(days=7)
        assert start < now < end
        assert body["rows"][0]["done"] == 1


class TestRefusals:
    @pytest.mark.parametrize(
        ("params", "field", "rule"),
        [
            ({"from": "yesterday"}, "from", "format"),
            ({"to": "2025-02-30"}, "to", "format"),
            ({"to": "2025-03-02T10:00:00"}, "to", "timezone"),
            ({"from": "2025-03-05", "to": "2025-03-02"}, "to", "after_from"),
            ({"from": "2024-01-01", "to": "2025-01-01"}, "to", "max_range"),
            ({"group_by": "team"}, "group_by", "enum"),
        ],
        ids=["from-format", "to-no-such-day", "naive-time", "to-before-from", "over-366-days", "group-by"],
    )
    def test_bad_values_name_the_field_and_rule(
        self, team: dict[str, Caller], params: dict[str, str], field: str, rule: str
    ) -> None:
        body = assert_error(kpi(team["boss"], **params), 422, "ValidationFailed")
        assert field_names(body) == [field]
        assert body["fields"][0]["rule"] == rule

    def test_a_full_leap_year_is_allowed(self, team: dict[str, Caller]) -> None:
        assert kpi(team["boss"], **{"from": "2024-01-01", "to": "2024-12-31"}).status_code == 200
