"""常规推广工作流程 — routine promotion, process 7 of PROCESSES.md (scheduled Mondays 09:00)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.runtime import flow_run

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.reports.period_figures import period_figures
from ecomflow.engine.rules.ad_law import scan_form_text
from ecomflow.engine.rules.budget import approver_role
from ecomflow.engine.rules.listing import title_bytes
from ecomflow.flows.artifacts import publish_markdown
from ecomflow.flows.primitives import ProcessRun, StepOutcome
from ecomflow.flows.process_flow import ScheduledStart, process_flow

PROCESS = "routine_promotion"


def _zone() -> ZoneInfo:
    return ZoneInfo(get_definitions().timezone)


def monday_of(day: date) -> date:
    """Return the Monday of the day's week."""
    return day - timedelta(days=day.weekday())


def iso_week(day: date) -> str:
    """Return the ISO week of a day, e.g. 2026-W49."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _week_of(run: ProcessRun) -> date:
    """Return the Monday of the week the run plans: the start form's, else the week it was started in."""
    given = run.params.get("week_of")
    day = date.fromisoformat(given) if given else run.started_at.astimezone(_zone()).date()
    return monday_of(day)


@task
def weekly_review(week_of: str) -> dict[str, Any]:
    """Collect last week's figures (Monday to Monday, local time) and attach them as a markdown artifact."""
    monday = date.fromisoformat(week_of)
    start = datetime.combine(monday - timedelta(days=7), time(), tzinfo=_zone())
    end = datetime.combine(monday, time(), tzinfo=_zone())
    with session_scope() as session:
        figures = period_figures(session, start=start, end=end)
    reviewed = iso_week(start.date())
    publish_markdown(
        f"{PROCESS}-{reviewed}-weekly-review",
        _review_markdown(reviewed, figures),
        description=f"上周数据回顾 / Weekly review {reviewed}",
    )
    return {"week": reviewed, "figures": figures}


def _review_markdown(week: str, figures: dict[str, Any]) -> str:
    started, completed = figures["instances_started"], figures["instances_completed"]
    rows = [
        f"| {process} | {started.get(process, 0)} | {completed.get(process, 0)} |"
        for process in sorted(set(started) | set(completed))
    ]
    return "\n".join(
        [
            f"# 上周数据回顾 — {week}",
            f"{figures['period']['start']} – {figures['period']['end']}",
            "",
            "| process | started | completed |",
            "|---|---|---|",
            *(rows or ["| — | 0 | 0 |"]),
            "",
            f"- tasks completed: {figures['tasks_completed']}",
            f"- refunds: {figures['refunds']['count']} ({figures['refunds']['amount']} CNY)",
            f"- catalog publications: {figures['catalog_publications']}",
            "",
            "```json",
            json.dumps(figures, ensure_ascii=False, indent=2),
            "```",
        ]
    )


NEW_TITLES = "seo_title_changes.new_title"


@task
def copy_check(plan: dict[str, Any], title_max_bytes: int, banned: list[str]) -> dict[str, Any]:
    """Check each new SEO title as listing_upload checks a title: its bytes (CJK = 2) and the advertising law."""
    findings = [
        {
            "field": f"seo_title_changes[{index}].new_title",
            "rule": "title_length",
            "message": f"new title is {size} bytes; the limit is {title_max_bytes} (a CJK character counts 2)",
        }
        for index, change in enumerate(plan.get("seo_title_changes") or [])
        if (size := title_bytes(change["new_title"])) > title_max_bytes
    ]
    findings += [
        {"field": hit.field, "rule": "ad_law", "message": hit.message}
        for hit in scan_form_text(plan, fields=[NEW_TITLES], banned=banned)
    ]
    return {"findings": findings}


def _plan_until_approved(run: ProcessRun, review: dict[str, Any]) -> tuple[StepOutcome, StepOutcome, int]:
    """Plan the week's actions until new titles pass the checks and the budget's approver approves, round by round."""
    owner_above = run.rule("owner_approval_above")
    context: dict[str, Any] = {"weekly_review": review}
    # Version 1 had no copy_check step: its instances are not held to it.
    checks_titles = any(step.key == "copy_check" for step in run.spec.steps)
    round = 1
    while True:
        plan = run.human("plan_actions", round=round, context=context)
        if checks_titles:
            limit, banned = int(run.rule("listing")["title_max_bytes"]), run.rule("banned_terms")
            check = run.auto("copy_check", copy_check, plan.data, limit, banned, round=round)
            if check["findings"]:
                context = {
                    **context,
                    "findings": check["findings"],
                    "rework": {"round": round, "step": "copy_check"},
                    "previous_plan": plan.data,
                }
                round = run.next_round("plan_actions", round)
                continue
        owner = approver_role(plan.data["budget"], owner_above=owner_above) == "owner"
        decision = run.approval(
            "owner_budget_approval" if owner else "budget_approval",
            round=round,
            context={"plan": plan.data, "planned_by": plan.by, "owner_approval_above": owner_above},
        )
        if decision.approved:
            return plan, decision, round
        rework = {"round": round, "comment": decision.comment, "by": decision.by}
        context = {**context, "rework": rework, "previous_plan": plan.data}
        context.pop("findings", None)
        round = run.next_round("plan_actions", round)


def scheduled_start() -> ScheduledStart:
    """Return the instance a scheduled run starts: the week it was scheduled for (local), keyed by its ISO week."""
    scheduled: datetime = flow_run.scheduled_start_time
    week = monday_of(scheduled.astimezone(_zone()).date())
    return ScheduledStart(business_key=iso_week(week), params={"week_of": week.isoformat()})


@process_flow(PROCESS, written_for={1, 2}, scheduled=scheduled_start)
def routine_promotion(run: ProcessRun) -> dict[str, Any]:
    """常规推广工作流程: weekly review, action plan, budget approval, execution report."""
    review = run.auto("weekly_review", weekly_review, _week_of(run).isoformat())
    plan, decision, rounds = _plan_until_approved(run, review)
    report = run.human("execute_and_report", context={"plan": plan.data, "approved_by": decision.by})
    return run.finish(
        "reported", budget=plan.data["budget"], approved_by=decision.by, rounds=rounds, report=report.data
    )
