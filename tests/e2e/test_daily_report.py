"""The daily report on the real stack: started over the API, published as two Prefect artifacts, announced."""

from __future__ import annotations

import json
import uuid

import pytest

from ecomflow.flows.daily_report import MARKDOWN_KEY, SALES_KEY, TABLE_KEY, XLSX_KEY
from tests.e2e.conftest import Stack, Staff, prefect_api

pytestmark = [pytest.mark.e2e]


def test_report_is_published_as_table_and_markdown(stack: Stack, team: dict[str, Staff]) -> None:
    ops = team["ops"]
    started = ops.start("daily_report", {"report_date": "2025-03-02"}, business_key=f"DR-{uuid.uuid4().hex[:8]}")
    done = ops.wait_for_state(started["id"], "completed", timeout=120)
    assert done["result"]["outcome"] == "published" and done["result"]["report_date"] == "2025-03-02"

    response = prefect_api(
        "POST",
        "/artifacts/filter",
        json={
            "artifacts": {
                "key": {"any_": [MARKDOWN_KEY, TABLE_KEY, SALES_KEY, XLSX_KEY]},
                "flow_run_id": {"any_": [done["flow_run_id"]]},
            },
        },
    )
    response.raise_for_status()
    by_key = {artifact["key"]: artifact for artifact in response.json()}
    assert by_key[MARKDOWN_KEY]["type"] == "markdown"
    assert by_key[MARKDOWN_KEY]["data"].startswith("# 日报表 / Daily report — 2025-03-02")
    assert by_key[TABLE_KEY]["type"] == "table"
    table = json.loads(by_key[TABLE_KEY]["data"])
    assert table[-1]["dimension"] == "total" and table[-1]["done"] == 0
    sales = json.loads(by_key[SALES_KEY]["data"])
    assert sales[-1]["channel"] == "total" and sales[-1]["gmv"] == "0.00"
    # Prefect keeps a link artifact as markdown: [text](link).
    assert "/ui/reports/daily/2025-03-02.xlsx)" in by_key[XLSX_KEY]["data"]

    announced = [event for event in done["history"] if event["type"] == "report.daily"]
    assert [event["data"]["report_date"] for event in announced] == ["2025-03-02"]
