"""季度营销计划制定流程 — the quarterly marketing plan, process 1 of PROCESSES.md.

The deck's goal cycle: 制定目标 (draft_plan) → 沟通目标 (owner_approval) → 目标分解
(decompose_targets, department_strategies) → 实施目标 (publish_plan, one campaign plan each).
Version 2 closes the PDCA loop: at the quarter's end compare_targets sets the targets against the
GMV sold and the owner records why and what to do (quarter_review); the next quarter's
collect_metrics shows that quarter's sales, its targets against actuals and those actions.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.runtime import flow_run

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.lifecycle import get_instance
from ecomflow.engine.reports.period_figures import period_figures
from ecomflow.engine.reports.quarter_figures import quarter_sales_figures
from ecomflow.engine.reports.targets_actuals import review_quarter
from ecomflow.engine.rules.targets import decompose_targets as split_targets
from ecomflow.engine.shop.process_records import save_targets
from ecomflow.flows.artifacts import publish_markdown, publish_table
from ecomflow.flows.copy_checks import has_step
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import ScheduledStart, process_flow

PROCESS = "quarterly_marketing_plan"
CAMPAIGN_FIELDS = ("theme", "starts_on", "ends_on", "budget")


def _zone() -> ZoneInfo:
    return ZoneInfo(get_definitions().timezone)


def quarter_of(day: date) -> str:
    """Return the quarter a day falls in, e.g. 2027-Q1 (a quarter's first day plans that quarter)."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def previous_quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """Return [start, end) of the quarter before the given one, at local midnight."""
    year, number = int(quarter[:4]), int(quarter[-1])
    year, number = (year - 1, 4) if number == 1 else (year, number - 1)
    start = datetime.combine(date(year, 3 * number - 2, 1), time(0), tzinfo=_zone())
    end_year, end_month = (year + 1, 1) if number == 4 else (year, 3 * number + 1)
    return start, datetime.combine(date(end_year, end_month, 1), time(0), tzinfo=_zone())


def quarter_end(quarter: str) -> datetime:
    """Return the end of a quarter: local midnight as the next one starts."""
    year, number = int(quarter[:4]), int(quarter[-1])
    year, month = (year + 1, 1) if number == 4 else (year, 3 * number + 1)
    return datetime.combine(date(year, month, 1), time(0), tzinfo=_zone())


def _business_key(instance_id: str) -> str:
    with session_scope() as session:
        return get_instance(session, instance_id).business_key


@task
def collect_metrics(instance_id: str, quarter: str) -> dict[str, Any]:
    """Gather last quarter's figures from ecomflow's own data and attach them to the run."""
    start, end = previous_quarter_bounds(quarter)
    with session_scope() as session:
        figures = period_figures(session, start=start, end=end)
        sales = quarter_sales_figures(session, quarter=quarter_of(start.date()), timezone=get_definitions().timezone)
    lines = [
        f"# Figures of the quarter before {quarter}",
        f"Period: {start.date().isoformat()} to {end.date().isoformat()} (exclusive)",
        "",
        *sales_lines(sales),
        "",
        "| process | started | completed |",
        "|---|---|---|",
    ]
    for process in sorted(set(figures["instances_started"]) | set(figures["instances_completed"])):
        started, completed = (
            figures["instances_started"].get(process, 0),
            figures["instances_completed"].get(process, 0),
        )
        lines.append(f"| {process} | {started} | {completed} |")
    lines += [
        "",
        f"- Tasks completed: {figures['tasks_completed']}",
        f"- Refunds: {figures['refunds']['count']} totalling {figures['refunds']['amount']} CNY",
        f"- Catalog publications: {figures['catalog_publications']}",
    ]
    publish_markdown(
        f"{PROCESS}-{_business_key(instance_id)}-metrics",
        "\n".join(lines),
        description=f"Last quarter's figures for the {quarter} plan",
    )
    return {"quarter": quarter, **figures, "sales": sales}


def sales_lines(sales: dict[str, Any]) -> list[str]:
    """Return a past quarter's sales as markdown: targets against actuals per month, channels, review actions."""
    lines = [
        f"## Sales of {sales['quarter']} (GMV, CNY)",
        "",
        "| month | target | actual | gap | reached |",
        "|---|---|---|---|---|",
    ]
    for line in [*sales["targets"]["months"], sales["targets"]["total"]]:
        cells = [line["key"], line["target"] or "—", line["actual"], line["gap"] or "—", line["attainment"] or "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "| channel | GMV | paid orders | buyers | AOV | refunds | refund rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in [*sales["channels"], sales["total"]]:
        cells = [row["key"] or "—", row["gmv"], str(row["paid_orders"]), str(row["buyers"]), row["aov"] or "—"]
        lines.append("| " + " | ".join([*cells, row["refund_amount"], row["refund_rate"] or "—"]) + " |")
    review = sales["review"]
    if review is None:
        return [*lines, "", "No quarter-end review recorded for that quarter."]
    lines += ["", f"Quarter-end review by {review['by']}: {review['assessment']}", ""]
    return lines + [
        f"- {a['action']}" + (f" ({a['department']})" if a.get("department") else "") for a in review["actions"]
    ]


@task
def decompose_targets(instance_id: str, quarter: str, revenue_target: float, weights: dict[str, Any]) -> dict[str, Any]:
    """Split the revenue target over months and departments, store the KPI targets and show them as a table."""
    decomposition = split_targets(
        revenue_target=revenue_target,
        quarter=quarter,
        month_weights=weights["months"],
        department_weights=weights["departments"],
    )
    with session_scope() as session:
        save_targets(session, plan_instance_id=instance_id, quarter=quarter, decomposition=decomposition)
    rows = [
        {"scope": "month", "key": m["month"], "weight": "", "revenue": m["revenue"]} for m in decomposition["months"]
    ]
    rows += [
        {"scope": "department", "key": d["department"], "weight": d["weight"], "revenue": d["revenue"]}
        for d in decomposition["departments"]
    ]
    publish_table(
        f"{PROCESS}-{_business_key(instance_id)}-targets",
        rows,
        description=f"{quarter} revenue target by month and by department (目标分解)",
    )
    return decomposition


@task
def publish_plan(
    instance_id: str, quarter: str, plan: dict[str, Any], targets: dict[str, Any], strategies: dict[str, Any]
) -> dict[str, Any]:
    """Publish the approved plan, its targets and every department's strategy as one summary."""
    lines = [
        f"# Marketing plan {quarter}",
        "",
        f"- Goal focus: {plan['goal_focus']}",
        f"- Revenue target: {plan['revenue_target']} CNY",
        f"- Margin target: {plan['margin_target']}",
        "",
        "## Competitor analysis",
        "",
        plan["competitor_analysis"],
        "",
        "## Assortment analysis",
        "",
        plan["assortment_analysis"],
        "",
        "## Campaigns",
        "",
        "| theme | starts on | ends on | budget (CNY) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c['theme']} | {c['starts_on']} | {c['ends_on']} | {c['budget']} |" for c in plan["campaigns"]]
    lines += ["", "## Monthly targets", "", "| month | revenue (CNY) |", "|---|---|"]
    lines += [f"| {m['month']} | {m['revenue']} |" for m in targets["months"]]
    lines += ["", "## Department targets and strategies"]
    by_department = {d["department"]: d for d in targets["departments"]}
    for role, strategy in strategies.items():
        target = by_department.get(role, {})
        lines += [
            "",
            f"### {role} — {target.get('revenue', '-')} CNY (weight {target.get('weight', '-')})",
            "",
            f"By {strategy['by']}: {strategy['data']['strategy']}",
            "",
        ]
        for action in strategy["data"]["key_actions"]:
            extras = ", ".join(f"{k}: {action[k]}" for k in ("due_on", "measure") if action.get(k))
            lines.append(f"- {action['action']}" + (f" ({extras})" if extras else ""))
    key = f"{PROCESS}-{_business_key(instance_id)}-plan"
    publish_markdown(key, "\n".join(lines), description=f"The {quarter} marketing plan as published")
    return {"quarter": quarter, "artifact": key, "departments": sorted(strategies), "campaigns": len(plan["campaigns"])}


def _plan_until_approved(run: ProcessRun, metrics: dict[str, Any]) -> tuple[StepOutcome, StepOutcome, int]:
    """Draft the plan until the owner approves it; a reject sends it back with the comment, round+1."""
    round = 1
    context: dict[str, Any] = {"quarter": metrics["quarter"], "metrics": metrics}
    while True:
        plan = run.human("draft_plan", round=round, context=context)
        decision = run.approval(
            "owner_approval", round=round, context={"plan": plan.data, "drafted_by": plan.by, "metrics": metrics}
        )
        if decision.approved:
            return plan, decision, round
        context = {
            **context,
            "rework": {"round": round, "comment": decision.comment, "by": decision.by},
            "previous_plan": plan.data,
        }
        round = run.next_round("draft_plan", round)


def scheduled_start() -> ScheduledStart:
    """Return the instance a scheduled run starts: the quarter starting that day (local), keyed by the quarter."""
    quarter = quarter_of(flow_run.scheduled_start_time.astimezone(_zone()).date())
    return ScheduledStart(business_key=quarter, params={"quarter": quarter})


@task
def compare_targets(instance_id: str, quarter: str) -> dict[str, Any]:
    """Set the quarter's targets against the GMV sold, as a table artifact and the review's context."""
    last_day = (quarter_end(quarter) - timedelta(days=1)).date()
    with session_scope() as session:
        review = review_quarter(session, quarter=quarter, as_of=last_day, timezone=get_definitions().timezone)
    result = review.as_dict()
    rows = [{"scope": "month", **line} for line in result["months"]]
    rows += [{"scope": "department", **line} for line in result["departments"]]
    rows.append({"scope": "quarter", **result["total"]})
    publish_table(
        f"{PROCESS}-{_business_key(instance_id)}-review",
        rows,
        description=f"{quarter} targets against actuals (GMV, CNY) for the quarter-end review",
    )
    return result


def _review_at_quarter_end(run: ProcessRun, quarter: str) -> StepOutcome:
    """Wait for the quarter's end, compare its targets with the GMV sold, and have the owner record actions."""
    run.wait_until("await_quarter_end", quarter_end(quarter))
    review = run.auto("compare_targets", compare_targets, run.instance_id, quarter)
    return run.human("quarter_review", context={"quarter": quarter, "review": review})


@process_flow(PROCESS, written_for={1, 2}, scheduled=scheduled_start)
def quarterly_marketing_plan(run: ProcessRun) -> dict[str, Any]:
    """季度营销计划制定流程: figures, plan, owner approval, targets, department strategies, campaigns."""
    # On demand without a quarter: the quarter of the day it was started, as for a scheduled run.
    quarter = run.params.get("quarter") or quarter_of(run.started_at.astimezone(_zone()).date())
    metrics = run.auto("collect_metrics", collect_metrics, run.instance_id, quarter)
    plan, approval, rounds = _plan_until_approved(run, metrics)
    targets = run.auto(
        "decompose_targets",
        decompose_targets,
        run.instance_id,
        quarter,
        plan.data["revenue_target"],
        run.rule("target_weights"),
    )
    outcomes = run.parallel(
        "department_strategies",
        context={"quarter": quarter, "plan": plan.data, "targets": targets},
    )
    strategies = {role: {"by": outcome.by, "data": outcome.data} for role, outcome in outcomes.items()}
    published = run.auto("publish_plan", publish_plan, run.instance_id, quarter, plan.data, targets, strategies)
    children = [
        run.child(
            "campaign_plans",
            index=index,
            process_key="themed_campaign_plan",
            params={field: campaign[field] for field in CAMPAIGN_FIELDS if field in campaign},
        )
        for index, campaign in enumerate(plan.data["campaigns"])
    ]
    summary = {"quarter": quarter, "rounds": rounds, "approved_by": approval.by, "artifact": published["artifact"]}
    if not has_step(run, "quarter_review"):  # version 1 ends with the plan published
        return run.finish("published", **summary, campaign_plans=children)
    review = _review_at_quarter_end(run, quarter)
    return run.finish(
        "reviewed", **summary, campaign_plans=children, reviewed_by=review.by, actions=len(review.data["actions"])
    )
