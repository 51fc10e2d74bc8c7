"""The manager dashboard: workload by role and process, KPIs with bar charts, instances, bulk task actions, and the
delivery log of every notification channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from ecomflow.api.web.charts import Bar, BarChart
from ecomflow.api.web.deps import ManagerForm, ManagerPage, Page
from ecomflow.api.web.file_views import FileView, view_of
from ecomflow.api.web.labels import process_title, role_title, step_title
from ecomflow.api.web.refusals import refusal_text
from ecomflow.api.web.rendering import render
from ecomflow.api.web.role_kpis_card import role_kpi_lines
from ecomflow.api.web.targets_card import targets_view
from ecomflow.api.web.task_rows import task_rows
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import EcomflowError, ValidationFailed
from ecomflow.engine.events.delivery_log import list_deliveries
from ecomflow.engine.files.attachments import images_of_instances
from ecomflow.engine.instances.lifecycle import list_instances
from ecomflow.engine.orchestrator.runs import flow_run_ui_url
from ecomflow.engine.reports.kpi import GroupBy, KpiReport, kpis_for
from ecomflow.engine.reports.workload import Workload, active_user_names, unfinished_tasks_of, workload_by
from ecomflow.engine.tasks.bulk import BulkAction, BulkOutcome, BulkRequest, run_bulk
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

router = APIRouter(prefix="/ui", include_in_schema=False)
PERIOD_DAYS = (7, 30, 90)
TASKS_SHOWN = 200
INSTANCES_SHOWN = 30
DELIVERIES_SHOWN = 20
IMAGES_SHOWN = 4


@dataclass(frozen=True)
class InstanceRow:
    """A process instance with the steps it waits on and its Prefect run."""

    id: str
    process: str
    business_key: str
    state: str
    waiting_on: list[tuple[str, str, str | None]]
    flow_run_url: str | None
    # The newest images its steps produced: what the manager would otherwise open task by task to see.
    images: list[FileView] = field(default_factory=list)


@dataclass(frozen=True)
class BulkResult:
    """What one bulk action did to one task, in words."""

    task_id: str
    title: str
    ok: bool
    text: str


@dataclass
class BulkForm:
    """The bulk form as submitted, shown again with its results."""

    action: str = ""
    task_ids: list[str] = field(default_factory=list)
    user: str = ""
    reason: str = ""


def _period(page: Page) -> int:
    value = page.request.query_params.get("days", "")
    return int(value) if value.isdigit() and int(value) in PERIOD_DAYS else PERIOD_DAYS[0]


def _workload_rows(rows: Sequence[Workload], name: Callable[[str], str]) -> list[tuple[str, Workload]]:
    return [(name(row.key), row) for row in rows]


def _workload_chart(title: str, rows: list[tuple[str, Workload]]) -> BarChart:
    return BarChart.of(title, [Bar(label, w.open, str(w.open), part=w.overdue) for label, w in rows])


def _kpi_charts(page: Page, people: KpiReport) -> list[BarChart]:
    t = page.t
    done = BarChart.of(t("dash.chart.done"), [Bar(r.key, r.done, str(r.done)) for r in people.rows])
    on_time = BarChart.of(
        t("dash.chart.on_time"),
        [Bar(r.key, r.on_time_rate, f"{r.on_time_rate * 100:.0f}%") for r in people.rows if r.on_time_rate is not None],
        scale=1.0,
    )
    return [done, on_time]


def _instances(session: Session, page: Page, *, process: str | None) -> list[InstanceRow]:
    definitions, t = page.definitions, page.t
    instances = list_instances(session, principal=page.user, process_key=process, limit=INSTANCES_SHOWN)
    waiting = unfinished_tasks_of(session, (i.id for i in instances))
    images = images_of_instances(session, (i.id for i in instances), each=IMAGES_SHOWN)
    return [
        InstanceRow(
            id=i.id,
            process=process_title(definitions, t, i.process_key),
            business_key=i.business_key,
            state=i.state,
            waiting_on=[
                (task.id, step_title(definitions, t, task.process_key, task.step_key), task.assignee)
                for task in waiting.get(i.id, [])
            ],
            flow_run_url=flow_run_ui_url(i.flow_run_id),
            images=[view_of(image) for image in images.get(i.id, [])],
        )
        for i in instances
    ]


def _render_dashboard(
    page: Page,
    *,
    bulk: BulkForm | None = None,
    results: list[BulkResult] | None = None,
    bulk_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    definitions, t, now = page.definitions, page.t, page.now
    days = _period(page)
    params = page.request.query_params
    role, process = params.get("role") or None, params.get("process") or None
    with read_scope() as session:
        by_role = _workload_rows(workload_by(session, group="role", now=now), lambda k: role_title(definitions, t, k))
        by_process = _workload_rows(
            workload_by(session, group="process", now=now), lambda k: process_title(definitions, t, k)
        )
        start = now - timedelta(days=days)
        people = kpis_for(session, principal=page.user, start=start, end=now, group_by=GroupBy.PERSON, now=now)
        roles = kpis_for(session, principal=page.user, start=start, end=now, group_by=GroupBy.ROLE, now=now)
        listed, _ = list_inbox(
            session,
            principal=page.user,
            filters=InboxFilter(role=role, process=process, sort="at_risk", limit=TASKS_SHOWN),
        )
        rows = task_rows(session, listed, page)
        instances = _instances(session, page, process=process)
        users = active_user_names(session)
        deliveries = list_deliveries(session, limit=DELIVERIES_SHOWN)
        targets = targets_view(session, page)
        role_kpis = role_kpi_lines(session, page, days=days)
    return render(
        "dashboard.html",
        page,
        status=status,
        days=days,
        periods=PERIOD_DAYS,
        role=role or "",
        process=process or "",
        by_role=by_role,
        by_process=by_process,
        workload_charts=[
            _workload_chart(t("dash.by_role"), by_role),
            _workload_chart(t("dash.by_process"), by_process),
        ],
        people=[(r.key, r) for r in people.rows],
        roles=[(role_title(definitions, t, r.key), r) for r in roles.rows],
        kpi_charts=_kpi_charts(page, people),
        tasks=rows,
        instances=instances,
        deliveries=deliveries,
        targets=targets,
        role_kpis=role_kpis,
        users=users,
        role_choices=[(key, role_title(definitions, t, key)) for key in definitions.roles],
        process_choices=[(key, process_title(definitions, t, key)) for key in definitions.processes],
        actions=[(a.value, t(f"bulk.action.{a.value}")) for a in BulkAction],
        bulk=bulk or BulkForm(),
        results=results,
        bulk_error=bulk_error,
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(page: ManagerPage) -> HTMLResponse:
    """Show the dashboard (managers; anyone else gets a 403 page)."""
    return _render_dashboard(page)


def _describe_outcomes(page: Page, outcomes: Sequence[BulkOutcome], *, user: str) -> list[BulkResult]:
    definitions, t = page.definitions, page.t
    with session_scope() as session:
        found = {o.task_id: session.get(HumanTask, o.task_id) for o in outcomes}
    results = []
    for outcome in outcomes:
        task = found.get(outcome.task_id)
        title = (
            f"{process_title(definitions, t, task.process_key)} · "
            f"{step_title(definitions, t, task.process_key, task.step_key)}"
            if task is not None
            else outcome.task_id
        )
        if outcome.error is None:
            text = t("bulk.unchanged") if outcome.unchanged else t("bulk.done")
        elif isinstance(outcome.error, EcomflowError):
            text = refusal_text(outcome.error, t, user=user)
        else:
            text = t("bulk.failed")
        results.append(BulkResult(task_id=outcome.task_id, title=title, ok=outcome.error is None, text=text))
    return results


@router.post("/dashboard/bulk", response_class=HTMLResponse)
def bulk(page: ManagerForm) -> HTMLResponse:
    """Claim, assign or release the chosen tasks, each on its own; show what happened to each."""
    form = BulkForm(
        action=page.field("action"),
        task_ids=[v for v in page.form.getlist("task_id") if isinstance(v, str) and v],
        user=page.field("user"),
        reason=page.field("reason"),
    )
    try:
        action = BulkAction(form.action)
    except ValueError:
        problem = FieldProblem("action", "enum", "choose claim, assign or release")
        return _render_dashboard(
            page, bulk=form, bulk_error=refusal_text(ValidationFailed("action", problems=[problem]), page.t), status=422
        )
    request = BulkRequest(
        action=action,
        task_ids=form.task_ids,
        user=form.user if action is BulkAction.ASSIGN else None,
        reason=form.reason,
    )
    try:
        outcomes = run_bulk(request=request, principal=page.user)
    except EcomflowError as refused:
        return _render_dashboard(page, bulk=form, bulk_error=refusal_text(refused, page.t, user=form.user), status=422)
    return _render_dashboard(page, bulk=form, results=_describe_outcomes(page, outcomes, user=form.user))
