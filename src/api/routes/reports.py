"""Reports: team KPIs over a date range."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from ecomflow.api.deps import CurrentUser, DefinitionsDep
from ecomflow.api.errors import error_responses
from ecomflow.api.presenters import present_kpi_report
from ecomflow.api.report_schemas import KpiReportOut
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import ValidationFailed
from ecomflow.engine.reports.kpi import GroupBy, kpis_for

router = APIRouter(tags=["reports"], responses=error_responses(401, 413, 422))

MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=7)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _moment(value: str, *, name: str, zone: ZoneInfo, day_end: bool) -> datetime:
    """Read a date (local midnight; the day after it when it ends the range) or an aware date-time."""
    try:
        if _DATE.match(value):
            day = date.fromisoformat(value) + timedelta(days=1 if day_end else 0)
            return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        rule = f"{name} must be a date (YYYY-MM-DD) or a date-time with a time zone, not {value!r}"
        raise ValidationFailed(rule, problems=[FieldProblem(name, "format", rule)]) from None
    if moment.tzinfo is None:
        rule = f"{name} must carry a time zone (e.g. +08:00 or Z) when it gives a time"
        raise ValidationFailed(rule, problems=[FieldProblem(name, "timezone", rule)])
    return moment.astimezone(UTC)


def report_range(
    start_text: str | None, end_text: str | None, *, zone: ZoneInfo, now: datetime
) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC from the query; by default the last 7 days, today included."""
    if end_text is None:
        end = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    else:
        end = _moment(end_text, name="to", zone=zone, day_end=True)
    start = end - DEFAULT_RANGE if start_text is None else _moment(start_text, name="from", zone=zone, day_end=False)
    if end <= start:
        rule = "to must come after from"
        raise ValidationFailed(rule, problems=[FieldProblem("to", "after_from", rule)])
    if end - start > MAX_RANGE:
        rule = f"from and to may be at most {MAX_RANGE.days} days apart"
        raise ValidationFailed(rule, problems=[FieldProblem("to", "max_range", rule)])
    return start, end


@router.get("/reports/kpi", response_model=KpiReportOut, responses=error_responses(403))
def kpi(
    user: CurrentUser,
    definitions: DefinitionsDep,
    start: Annotated[
        str | None,
        Query(alias="from", description="YYYY-MM-DD (team time zone) or an aware date-time; default: to − 7 days"),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", description="YYYY-MM-DD, inclusive, or an aware date-time, exclusive; default: today"),
    ] = None,
    group_by: GroupBy = GroupBy.PERSON,
) -> KpiReportOut:
    """Return the KPIs per person, role or process with a total; non-managers get their own person row only."""
    now = utcnow()
    range_start, range_end = report_range(start, end, zone=ZoneInfo(definitions.timezone), now=now)
    with read_scope() as session:
        report = kpis_for(session, principal=user, start=range_start, end=range_end, group_by=group_by, now=now)
    return present_kpi_report(report, timezone=definitions.timezone)
