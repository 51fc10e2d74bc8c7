"""GET /exports/{kpi,instances,tasks}: streamed CSV or XLSX, filtered by what the caller may see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import BytesIO

from openpyxl import load_workbook

from ecomflow.engine.clock import utcnow
from tests.api.conftest import Caller, assert_error, field_names
from tests.factories import add_task_row, make_instance


def rows_of(csv_body: bytes) -> list[list[str]]:
    text = csv_body.decode("utf-8")
    assert text.startswith("\ufeff")
    return [line.split(",") for line in text[1:].splitlines()]


class TestTaskExport:
    def test_csv_lists_the_tasks_the_caller_may_see(self, login: Callable[..., Caller]) -> None:
        boss, lin = login("owner"), login("customer_service")
        instance_id = make_instance()
        hour_ago = utcnow() - timedelta(hours=1)
        theirs = add_task_row(instance_id=instance_id, role="customer_service", created_at=hour_ago)
        other = add_task_row(instance_id=instance_id, role="warehouse", created_at=hour_ago)
        answer = lin.get("/exports/tasks", params={"format": "csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert 'filename="tasks.csv"' in answer.headers["content-disposition"]
        header, *rows = rows_of(answer.content)
        assert header[:2] == ["任务ID Task", "流程 Process"]
        assert [r[0] for r in rows] == [theirs]
        assert sorted(r[0] for r in rows_of(boss.get("/exports/tasks").content)[1:]) == sorted([theirs, other])

    def test_a_bad_format_or_date_names_the_field(self, login: Callable[..., Caller]) -> None:
        boss = login("owner")
        assert boss.get("/exports/tasks", params={"format": "pdf"}).status_code == 422
        response = boss.get("/exports/tasks", params={"from": "yesterday"})
        assert field_names(assert_error(response, 422, "ValidationFailed")) == ["from"]


class TestInstanceExport:
    def test_xlsx_lists_the_instances_of_the_range(self, login: Callable[..., Caller]) -> None:
        boss = login("operations")
        instance_id = make_instance()
        answer = boss.get("/exports/instances", params={"format": "xlsx", "process": "returns_exchange"})
        assert answer.status_code == 200
        sheet = load_workbook(BytesIO(answer.content))["instances"]
        assert [c.value for c in sheet[1]][:3] == ["实例ID Instance", "流程 Process", "业务单号 Business key"]
        assert [sheet.cell(2, 1).value, sheet.cell(2, 2).value, sheet.max_row] == [instance_id, "returns_exchange", 2]


class TestKpiExport:
    def test_staff_get_their_own_row_and_managers_every_role(self, login: Callable[..., Caller]) -> None:
        boss, lin = login("owner"), login("customer_service")
        rows = rows_of(lin.get("/exports/kpi").content)
        assert [r[0] for r in rows[1:]] == [lin.name, "total"]
        assert_error(lin.get("/exports/kpi", params={"group_by": "role"}), 403, "Forbidden")
        assert boss.get("/exports/kpi", params={"group_by": "role", "format": "xlsx"}).status_code == 200
