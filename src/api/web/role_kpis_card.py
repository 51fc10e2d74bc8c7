"""The dashboard's card of the KPIs each role's data gives (customer service, warehouse, promotion, visual)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from ecomflow.api.web.deps import Page
from ecomflow.api.web.labels import role_title
from ecomflow.api.web.rendering import money, percent_fine
from ecomflow.engine.reports.ad_kpis import promotion_kpis, visual_kpis
from ecomflow.engine.reports.role_kpis import customer_service_kpis, warehouse_kpis
from ecomflow.engine.reports.sales import day_range


@dataclass(frozen=True)
class RoleKpiLine:
    """One line of the card: the role, what is measured, its value and what it is computed from."""

    role: str
    measure: str
    value: str
    basis: str


def _ratio(value: object) -> str:
    return "—" if value is None else str(value)


def role_kpi_lines(session: Session, page: Page, *, days: int) -> list[RoleKpiLine]:
    """Return the card's lines over the last `days` local days, today included."""
    t, definitions = page.t, page.definitions
    last = page.now.astimezone(page.zone).date()
    first = last - timedelta(days=days - 1)
    start, end = day_range(first, last, page.zone)
    service = customer_service_kpis(session, start=start, end=end)
    warehouse = warehouse_kpis(session, start=start, end=end, as_of=page.now)
    promotion = promotion_kpis(session, first=first, last=last, timezone=definitions.timezone)
    visual = visual_kpis(session, first=first, last=last)

    def role(key: str) -> str:
        return role_title(definitions, t, key)

    def fine(rate: object) -> str:
        return percent_fine(None if rate is None else float(rate))  # type: ignore[arg-type]

    lines = [
        RoleKpiLine(
            role("customer_service"),
            t("rolekpi.conversion"),
            fine(service.conversion),
            t("rolekpi.of_inquiries", ordered=service.ordered, inquiries=service.inquiries),
        ),
        RoleKpiLine(
            role("warehouse"),
            t("rolekpi.dispatch"),
            fine(warehouse.dispatch_rate),
            t("rolekpi.of_due", within=warehouse.within_promise, due=warehouse.due),
        ),
    ]
    for channel in [promotion.ads_total, *promotion.channels]:
        lines.append(
            RoleKpiLine(
                role("promotion"),
                t("rolekpi.ad_roi", channel=t(f"rolekpi.source.{channel.source or 'all'}")),
                _ratio(channel.roi),
                t("rolekpi.gmv_over_spend", gmv=money(channel.gmv), spend=money(channel.spend)),
            )
        )
    for event in promotion.events:
        lines.append(
            RoleKpiLine(
                role("promotion"),
                t("rolekpi.event_roi", theme=event.theme),
                _ratio(event.roi),
                t("rolekpi.gmv_over_budget", gmv=money(event.gmv), budget=money(event.cost)),
            )
        )
    lines.append(
        RoleKpiLine(
            role("visual"),
            t("rolekpi.ctr"),
            fine(visual.total.ctr),
            t(
                "rolekpi.clicks_over_impressions",
                clicks=visual.total.clicks,
                impressions=visual.total.impressions,
                linked=len(visual.creatives),
                unlinked=visual.unlinked,
            ),
        )
    )
    return lines
