"""The dashboard's card of targets against actuals (PDCA's check): target and actual bars per month, and the table."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ecomflow.api.web.charts import Bar, BarChart
from ecomflow.api.web.deps import Page
from ecomflow.api.web.rendering import money
from ecomflow.engine.reports.targets_actuals import (
    QuarterReview,
    month_days,
    parse_quarter,
    quarter_months,
    review_quarter,
)


@dataclass(frozen=True)
class TargetsView:
    """The dashboard's targets-against-actuals card: a chart (target and actual bars per month) and the review."""

    chart: BarChart
    review: QuarterReview


def targets_view(session: Session, page: Page) -> TargetsView:
    """Return the chosen quarter's (?quarter=, else the current one) targets against actuals, up to today."""
    t, today = page.t, page.now.astimezone(page.zone).date()
    try:
        quarter = parse_quarter(page.request.query_params.get("quarter") or "")
    except ValueError:
        quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    as_of = min(today, month_days(quarter_months(quarter)[-1])[1])
    review = review_quarter(session, quarter=quarter, as_of=as_of, timezone=page.definitions.timezone)
    bars = []
    for line in review.months:
        target = float(line.target or 0)
        bars.append(Bar(f"{line.key} {t('targets.target')}", target, money(line.target)))
        bars.append(Bar(f"{line.key} {t('targets.actual')}", float(line.actual), money(line.actual)))
    return TargetsView(chart=BarChart.of(t("targets.chart", quarter=quarter), bars), review=review)
