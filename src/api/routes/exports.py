"""Exports: the KPI table, the instance list and the task list as CSV or XLSX, streamed as they are written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ecomflow.api.deps import CurrentUser, DefinitionsDep
from ecomflow.api.errors import error_responses
from ecomflow.api.file_responses import stream_table
from ecomflow.api.routes.reports import report_range
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports.exports import (
    INSTANCE_COLUMNS,
    KPI_COLUMNS,
    TASK_COLUMNS,
    Column,
    ListFilter,
    instance_rows,
    kpi_rows,
    task_rows,
)
from ecomflow.engine.reports.kpi import GroupBy, kpis_for
from ecomflow.engine.reports.tabular import MEDIA_TYPES, ExportFormat

router = APIRouter(prefix="/exports", tags=["exports"], responses=error_responses(401, 422))

FROM_HELP = "YYYY-MM-DD (team time zone) or an aware date-time; default: to − 7 days"
TO_HELP = "YYYY-MM-DD, inclusive, or an aware date-time, exclusive; default: today"
FILE_RESPONSE = {200: {"content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}}, "description": "the file"}}
Format = Annotated[ExportFormat, Query(alias="format", description="csv (UTF-8 with BOM) or xlsx")]
From = Annotated[str | None, Query(alias="from", description=FROM_HELP)]
To = Annotated[str | None, Query(alias="to", description=TO_HELP)]


@router.get("/kpi", response_class=StreamingResponse, responses={**FILE_RESPONSE, **error_responses(403)})
def export_kpi(
    user: CurrentUser,
    definitions: DefinitionsDep,
    fmt: Format = ExportFormat.CSV,
    start: From = None,
    end: To = None,
    group_by: GroupBy = GroupBy.PERSON,
) -> StreamingResponse:
    """Export the KPI table (as GET /reports/kpi: non-managers get their own row) as CSV or XLSX."""
    now = utcnow()
    range_start, range_end = report_range(start, end, zone=ZoneInfo(definitions.timezone), now=now)
    with read_scope() as session:
        report = kpis_for(session, principal=user, start=range_start, end=range_end, group_by=group_by, now=now)
    return stream_table(
        fmt,
        name=f"kpi-{group_by.value}",
        columns=KPI_COLUMNS,
        rows_of=lambda _session: kpi_rows(report),
        timezone=definitions.timezone,
    )


@router.get("/instances", response_class=StreamingResponse, responses=FILE_RESPONSE)
def export_instances(
    user: CurrentUser,
    definitions: DefinitionsDep,
    fmt: Format = ExportFormat.CSV,
    start: From = None,
    end: To = None,
    process: str | None = None,
    state: str | None = None,
) -> StreamingResponse:
    """Export the instances the caller may see, created in the range, oldest first, as CSV or XLSX."""
    return _stream_list(
        fmt, "instances", INSTANCE_COLUMNS, instance_rows, user, definitions, start, end, process, state
    )


@router.get("/tasks", response_class=StreamingResponse, responses=FILE_RESPONSE)
def export_tasks(
    user: CurrentUser,
    definitions: DefinitionsDep,
    fmt: Format = ExportFormat.CSV,
    start: From = None,
    end: To = None,
    process: str | None = None,
    state: str | None = None,
) -> StreamingResponse:
    """Export the tasks the caller may see, created in the range, oldest first, as CSV or XLSX."""
    return _stream_list(fmt, "tasks", TASK_COLUMNS, task_rows, user, definitions, start, end, process, state)


def _stream_list(
    fmt: ExportFormat,
    name: str,
    columns: tuple[Column, ...],
    rows: Callable[..., Iterable[Any]],
    user: Principal,
    definitions: Definitions,
    start: str | None,
    end: str | None,
    process: str | None,
    state: str | None,
) -> StreamingResponse:
    """Stream the rows a list query gives the caller for the range and filters."""
    range_start, range_end = report_range(start, end, zone=ZoneInfo(definitions.timezone), now=utcnow())
    where = ListFilter(start=range_start, end=range_end, process=process, state=state)
    return stream_table(
        fmt,
        name=name,
        columns=columns,
        rows_of=lambda session: rows(session, principal=user, where=where),
        timezone=definitions.timezone,
    )
