"""Business figures (managers only): sales facts, the daily report's workbook, targets against actuals."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from ecomflow.api.deps import CurrentUser, DefinitionsDep
from ecomflow.api.errors import error_responses
from ecomflow.api.report_schemas import (
    AdRoiOut,
    CreativeCtrOut,
    CustomerServiceKpisOut,
    EventRoiOut,
    PromotionKpisOut,
    RoleKpisOut,
    SalesReportOut,
    SalesRowOut,
    TargetsOut,
    VisualKpisOut,
    WarehouseKpisOut,
)
from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Forbidden, ValidationFailed
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.reports.ad_kpis import AdRoi, CreativeCtr, promotion_kpis, visual_kpis
from ecomflow.engine.reports.daily_report import build_daily_report
from ecomflow.engine.reports.daily_xlsx import XLSX_TYPE, daily_report_xlsx
from ecomflow.engine.reports.role_kpis import customer_service_kpis, warehouse_kpis
from ecomflow.engine.reports.sales import MAX_DAYS, SalesBy, SalesReport, day_range, sales_report
from ecomflow.engine.reports.targets_actuals import month_days, parse_quarter, quarter_months, review_quarter

router = APIRouter(tags=["reports"], responses=error_responses(401, 403, 422))

DEFAULT_DAYS = 7


def parse_day(value: str, *, name: str) -> date:
    """Read a YYYY-MM-DD query value, or refuse it naming the field."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        rule = f"{name} must be a date written YYYY-MM-DD, not {value!r}"
        raise ValidationFailed(rule, problems=[FieldProblem(name, "format", rule)]) from None


def day_span(first_text: str | None, last_text: str | None, *, zone: ZoneInfo) -> tuple[date, date]:
    """Return the local days first..last from the query; by default the last 7 days, today included."""
    last = utcnow().astimezone(zone).date() if last_text is None else parse_day(last_text, name="to")
    first = last - timedelta(days=DEFAULT_DAYS - 1) if first_text is None else parse_day(first_text, name="from")
    if last < first:
        rule = "to must not come before from"
        raise ValidationFailed(rule, problems=[FieldProblem("to", "after_from", rule)])
    if (last - first).days >= MAX_DAYS:
        rule = f"from and to may cover at most {MAX_DAYS} days"
        raise ValidationFailed(rule, problems=[FieldProblem("to", "max_range", rule)])
    return first, last


def check_may_see_figures(user: Principal) -> None:
    """Refuse the business figures to anyone but the managers, naming the rule."""
    if not access.may_watch_the_team(user):
        raise Forbidden(f"figures rule: only managers see the shop's sales figures; {user.name} is not one")


def present_sales(report: SalesReport) -> SalesReportOut:
    return SalesReportOut(
        first=report.first.isoformat(),
        last=report.last.isoformat(),
        timezone=report.timezone,
        by=report.by.value,
        rows=[SalesRowOut(**row.as_dict()) for row in report.rows],
        total=SalesRowOut(**report.total.as_dict()),
    )


@router.get("/reports/sales", response_model=SalesReportOut)
def sales(
    user: CurrentUser,
    definitions: DefinitionsDep,
    first: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD; default: to − 6 days")] = None,
    last: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive; default: today")] = None,
    by: SalesBy = SalesBy.DAY,
) -> SalesReportOut:
    """Return GMV, paid orders, buyers, AOV, refunds and refund rate by day, product, channel or store."""
    check_may_see_figures(user)
    zone = ZoneInfo(definitions.timezone)
    first_day, last_day = day_span(first, last, zone=zone)
    with read_scope() as session:
        report = sales_report(session, first=first_day, last=last_day, timezone=definitions.timezone, by=by)
    return present_sales(report)


def xlsx_response(content: bytes, *, filename: str) -> Response:
    """Return an XLSX file as a download under an ASCII file name."""
    return Response(
        content=content,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get(
    "/reports/daily/{date}.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "the workbook"}},
)
def daily_xlsx(
    user: CurrentUser,
    definitions: DefinitionsDep,
    date: Annotated[str, Path(description="YYYY-MM-DD in the team's time zone")],
) -> Response:
    """Return the day's 日报表 as XLSX: sales, refunds, event sign-ups, overdue work and task KPIs, one sheet each."""
    check_may_see_figures(user)
    day = parse_day(date, name="date")
    with read_scope() as session:
        report = build_daily_report(session, day=day, timezone=definitions.timezone, now=utcnow())
    return xlsx_response(daily_report_xlsx(report), filename=f"daily-report-{day.isoformat()}.xlsx")


def current_quarter(today: date) -> str:
    """Return the quarter a day falls in, as the plan stores it (2026-Q4)."""
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


@router.get("/reports/targets", response_model=TargetsOut)
def targets(
    user: CurrentUser,
    definitions: DefinitionsDep,
    quarter: Annotated[str | None, Query(description="2026Q4 or 2026-Q4; default: the current quarter")] = None,
) -> TargetsOut:
    """Return the quarterly plan's monthly and departmental revenue targets beside the GMV sold (up to today)."""
    check_may_see_figures(user)
    today = utcnow().astimezone(ZoneInfo(definitions.timezone)).date()
    try:
        chosen = parse_quarter(quarter) if quarter is not None else current_quarter(today)
    except ValueError as exc:
        raise ValidationFailed(str(exc), problems=[FieldProblem("quarter", "format", str(exc))]) from None
    quarter_end = month_days(quarter_months(chosen)[-1])[1]
    with read_scope() as session:
        review = review_quarter(session, quarter=chosen, as_of=min(today, quarter_end), timezone=definitions.timezone)
    return TargetsOut(**review.as_dict())


# Every role's KPI is computed now; the field stays for clients that read it.
LEFT_OUT: dict[str, str] = {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _ad_roi_out(row: AdRoi) -> AdRoiOut:
    return AdRoiOut(
        source=row.source,
        plan=row.plan,
        impressions=row.impressions,
        clicks=row.clicks,
        spend=str(row.spend),
        gmv=str(row.gmv),
        roi=_text(row.roi),
    )


def _ctr_out(row: CreativeCtr) -> CreativeCtrOut:
    return CreativeCtrOut(
        creative_id=row.creative_id,
        title=row.title,
        ad_creative_id=row.ad_creative_id,
        impressions=row.impressions,
        clicks=row.clicks,
        ctr=_text(row.ctr),
    )


@router.get("/reports/roles", response_model=RoleKpisOut)
def role_kpis(
    user: CurrentUser,
    definitions: DefinitionsDep,
    first: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD; default: to − 6 days")] = None,
    last: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive; default: today")] = None,
) -> RoleKpisOut:
    """Return the KPIs per role computed from the data: customer service, warehouse, promotion (ROI of ads and
    events) and visual (CTR of approved creatives) (managers only)."""
    check_may_see_figures(user)
    zone = ZoneInfo(definitions.timezone)
    first_day, last_day = day_span(first, last, zone=zone)
    start, end = day_range(first_day, last_day, zone)
    # An order paid in the range may ship after it: promises are judged as things stand now.
    as_of = utcnow()
    with read_scope() as session:
        service = customer_service_kpis(session, start=start, end=end)
        warehouse = warehouse_kpis(session, start=start, end=end, as_of=as_of)
        promotion = promotion_kpis(session, first=first_day, last=last_day, timezone=definitions.timezone)
        visual = visual_kpis(session, first=first_day, last=last_day)
    return RoleKpisOut(
        first=first_day.isoformat(),
        last=last_day.isoformat(),
        as_of=as_of,
        customer_service=CustomerServiceKpisOut(
            inquiries=service.inquiries,
            ordered=service.ordered,
            conversion=_text(service.conversion),
            first_response_p50_seconds=service.first_response_seconds.p50,
            first_response_p90_seconds=service.first_response_seconds.p90,
        ),
        warehouse=WarehouseKpisOut(
            due=warehouse.due,
            within_promise=warehouse.within_promise,
            not_shipped=warehouse.not_shipped,
            dispatch_rate=_text(warehouse.dispatch_rate),
        ),
        promotion=PromotionKpisOut(
            ads=[_ad_roi_out(row) for row in promotion.ads],
            channels=[_ad_roi_out(row) for row in promotion.channels],
            ads_total=_ad_roi_out(promotion.ads_total),
            events=[
                EventRoiOut(
                    campaign_id=e.campaign_id,
                    theme=e.theme,
                    starts_on=e.starts_on,
                    ends_on=e.ends_on,
                    skus=list(e.skus),
                    platforms=list(e.platforms),
                    gmv=str(e.gmv),
                    cost=str(e.cost),
                    roi=_text(e.roi),
                )
                for e in promotion.events
            ],
        ),
        visual=VisualKpisOut(
            creatives=[_ctr_out(row) for row in visual.creatives],
            total=_ctr_out(visual.total),
            unlinked=visual.unlinked,
        ),
        left_out=LEFT_OUT,
    )
