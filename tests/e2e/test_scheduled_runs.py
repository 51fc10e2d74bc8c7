"""The runs Prefect's scheduler makes from the daily report's and the quarterly kickoff's schedules, executed.

Prefect's scheduler turns each deployment's schedule (flows.yaml) into runs ahead of time, with no parameters.
The test takes the first such run of each deployment and moves its start to now, keeping the time it was
scheduled for (Prefect's expected start, which the flow reads): the worker executes it through the same path
as on the day, and the flow starts its own instance for the day or the quarter the scheduler meant.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ecomflow.flows.daily_report import MARKDOWN_KEY, TABLE_KEY
from tests.e2e.conftest import Stack, Staff, prefect_api, wait_until

pytestmark = [pytest.mark.e2e]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _generated_runs(process: str) -> list[dict[str, Any]]:
    """Return the runs the scheduler generated for the process's deployment, earliest first."""
    found = prefect_api("GET", f"/deployments/name/{process}/ecomflow")
    if found.status_code == 404:  # the worker has not created its deployments yet
        return []
    found.raise_for_status()
    deployment = found.json()
    response = prefect_api(
        "POST",
        "/flow_runs/filter",
        json={
            "flow_runs": {"deployment_id": {"any_": [deployment["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
            "sort": "EXPECTED_START_TIME_ASC",
        },
    )
    response.raise_for_status()
    return [run for run in response.json() if run["auto_scheduled"]]


def _generated_runs_of(process: str) -> list[dict[str, Any]]:
    # The worker creates the deployments as it starts; the scheduler picks up a new one within seconds.
    runs = wait_until(lambda: _generated_runs(process), timeout=90, what=f"the scheduler's runs of {process}")
    assert all(run["parameters"] == {} for run in runs)
    return runs


def _expected_start(run: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(run["expected_start_time"]).astimezone(SHANGHAI)


def _run_first_generated_run_now(process: str) -> dict[str, Any]:
    """Let the worker take the scheduler's first run now; Prefect keeps the time it was scheduled for.

    A worker starting meanwhile (earlier tests restart theirs) re-registers the deployments, and Prefect then
    replaces the scheduler's runs not yet taken with new ones: then the new first run is taken instead.
    """
    for _ in range(5):
        run = _generated_runs_of(process)[0]
        moved = prefect_api(
            "POST",
            f"/flow_runs/{run['id']}/set_state",
            json={
                "state": {
                    "type": "SCHEDULED",
                    "name": "Scheduled",
                    "state_details": {"scheduled_time": datetime.now(UTC).isoformat()},
                },
                "force": True,
            },
        )
        if moved.status_code == 404:
            continue
        assert moved.status_code in (200, 201), moved.text
        taken = wait_until(lambda run=run: _taken_or_gone(run["id"]), timeout=90, what=f"a worker to take {process}")
        if taken == "taken":
            return run
    raise AssertionError(f"the scheduler's runs of {process} kept being replaced before a worker took one")


def _taken_or_gone(flow_run_id: str) -> str | None:
    response = prefect_api("GET", f"/flow_runs/{flow_run_id}")
    if response.status_code == 404:
        return "gone"
    response.raise_for_status()
    return "taken" if response.json()["state"]["type"] != "SCHEDULED" else None


def _instance_of_run(staff: Staff, process: str, flow_run_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        items = staff.get("/instances", params={"process": process, "limit": 200}).json()["items"]
        return next((item for item in items if item["flow_run_id"] == flow_run_id), None)

    return wait_until(find, timeout=90, what=f"the instance the scheduled {process} run started")


def test_a_scheduled_daily_report_reports_on_the_day_it_was_scheduled_for(stack: Stack, team: dict[str, Staff]) -> None:
    ops = team["ops"]
    run = _run_first_generated_run_now("daily_report")
    scheduled_for = _expected_start(run)
    assert (scheduled_for.hour, scheduled_for.minute) == (18, 0)
    day = scheduled_for.date().isoformat()

    instance = _instance_of_run(ops, "daily_report", run["id"])
    assert (instance["business_key"], instance["params"]) == (day, {"report_date": day})
    done = ops.wait_for_state(instance["id"], "completed", timeout=120)
    assert done["result"]["outcome"] == "published" and done["result"]["report_date"] == day

    response = prefect_api(
        "POST",
        "/artifacts/filter",
        json={"artifacts": {"key": {"any_": [MARKDOWN_KEY, TABLE_KEY]}, "flow_run_id": {"any_": [run["id"]]}}},
    )
    response.raise_for_status()
    by_key = {artifact["key"]: artifact for artifact in response.json()}
    assert by_key[MARKDOWN_KEY]["data"].startswith(f"# 日报表 / Daily report — {day}")
    assert json.loads(by_key[TABLE_KEY]["data"])[-1]["dimension"] == "total"
    assert [event["data"]["report_date"] for event in done["history"] if event["type"] == "report.daily"] == [day]


def test_a_scheduled_quarterly_kickoff_plans_the_quarter_it_opens(stack: Stack, team: dict[str, Staff]) -> None:
    ops = team["ops"]
    run = _run_first_generated_run_now("quarterly_marketing_plan")
    scheduled_for = _expected_start(run)
    assert (scheduled_for.day, scheduled_for.hour, scheduled_for.minute) == (1, 9, 0)
    assert scheduled_for.month in (1, 4, 7, 10)
    quarter = f"{scheduled_for.year}-Q{(scheduled_for.month - 1) // 3 + 1}"
    previous = date(scheduled_for.year - (scheduled_for.month == 1), (scheduled_for.month - 4) % 12 + 1, 1)

    instance = _instance_of_run(ops, "quarterly_marketing_plan", run["id"])
    try:
        assert (instance["business_key"], instance["params"]) == (quarter, {"quarter": quarter})
        # Its first step gathered the figures of the quarter before the one it plans.
        draft = ops.wait_for_task(instance["id"], "draft_plan", timeout=90)
        metrics = ops.get(f"/tasks/{draft['id']}").json()["context"]["metrics"]
        assert metrics["period"] == {
            "start": f"{previous.isoformat()}T00:00:00+08:00",
            "end": f"{scheduled_for.date().isoformat()}T00:00:00+08:00",
        }
    finally:
        assert ops.post(f"/instances/{instance['id']}/cancel", json={"reason": "test over"}).status_code == 200
