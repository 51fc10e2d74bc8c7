"""Starting a process from the browser: the processes one may start, and each one's start form."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from starlette.background import BackgroundTask

from ecomflow.api.delivery import deliver_now
from ecomflow.api.flow_registry import has_flow
from ecomflow.api.web.deps import Page, PageRefused, StaffForm, StaffPage
from ecomflow.api.web.flash import Flash
from ecomflow.api.web.forms import build_form_view, read_submission
from ecomflow.api.web.labels import process_title, role_title
from ecomflow.api.web.refusals import refusal_text
from ecomflow.api.web.rendering import HOME, redirect, render
from ecomflow.engine import access
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.definitions.processes import ProcessSpec
from ecomflow.engine.errors import EcomflowError, Forbidden, ValidationFailed
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.instances.lifecycle import start_instance

router = APIRouter(prefix="/ui", include_in_schema=False)
PROCESSES = f"{HOME}/processes"
BUSINESS_KEY = "business_key"
MAX_BUSINESS_KEY = 128


@router.get("/processes", response_class=HTMLResponse)
def processes_page(page: StaffPage) -> HTMLResponse:
    """List the processes, those the user may start first, each with who starts it."""
    rows = [
        {
            "key": spec.key,
            "title": process_title(page.definitions, page.t, spec.key),
            "may_start": access.may_start_process(page.user, spec) and has_flow(spec.key),
            "starters": _starter_names(page, spec),
        }
        for spec in page.definitions.processes.values()
    ]
    rows.sort(key=lambda row: not row["may_start"])
    return render("processes.html", page, rows=rows, active_nav="processes")


@router.get("/processes/{key}/start", response_class=HTMLResponse)
def start_page(key: str, page: StaffPage) -> HTMLResponse:
    """Show the start form of a process the user may start."""
    spec = _startable(key, page)
    return _render_start(page, spec, business_key="", values={}, problems=[])


@router.post("/processes/{key}/start", response_class=HTMLResponse)
def start(key: str, page: StaffForm) -> Response:
    """Start an instance from the posted form; problems come back next to their fields."""
    spec = _startable(key, page)
    business_key = page.field(BUSINESS_KEY)
    params = read_submission(spec.start_form, page.form, zone=page.zone)
    if not business_key or len(business_key) > MAX_BUSINESS_KEY:
        problem = FieldProblem(BUSINESS_KEY, "length", f"business_key must be 1 to {MAX_BUSINESS_KEY} characters")
        return _render_start(page, spec, business_key=business_key, values=params, problems=[problem], status=422)
    try:
        with session_scope() as session:
            start_instance(
                session,
                definitions=page.definitions,
                process_key=key,
                business_key=business_key,
                params=params,
                principal=page.user,
            )
            starts = new_message_ids(session)
    except ValidationFailed as refused:
        return _render_start(
            page, spec, business_key=business_key, values=params, problems=refused.problems, status=422
        )
    except EcomflowError as refused:
        return redirect(page, f"{PROCESSES}/{key}/start", flash=Flash("error", refusal_text(refused, page.t)))
    title = process_title(page.definitions, page.t, key)
    response = redirect(
        page, HOME, flash=Flash("ok", page.t("flash.started", process=title, business_key=business_key))
    )
    # The flow run is created right after the answer, as the API does; the dispatcher retries.
    response.background = BackgroundTask(deliver_now, starts)
    return response


def _startable(key: str, page: Page) -> ProcessSpec:
    """Return the process if it exists and the user may start it; else a 404 or a 403 page naming the rule."""
    spec = page.definitions.processes.get(key)
    if spec is None or not has_flow(key):
        raise PageRefused(404, "refused.page_missing", page)
    try:
        access.check_may_start(page.user, spec)
    except Forbidden:
        raise PageRefused(403, "refused.not_a_starter", page) from None
    return spec


def _starter_names(page: Page, spec: ProcessSpec) -> list[str]:
    # "managers" in flows.yaml names the same group an escalation goes to.
    return [role_title(page.definitions, page.t, starter) for starter in spec.starters]


def _render_start(
    page: Page, spec: ProcessSpec, *, business_key: str, values: dict, problems: list[FieldProblem], status: int = 200
) -> HTMLResponse:
    key_problems = [p for p in problems if p.field == BUSINESS_KEY]
    form_view = build_form_view(
        spec.start_form,
        values=values,
        problems=[p for p in problems if p.field != BUSINESS_KEY],
        t=page.t,
        zone=page.zone,
        approval=False,
    )
    return render(
        "start.html",
        page,
        status=status,
        spec=spec,
        title=process_title(page.definitions, page.t, spec.key),
        form_view=form_view,
        business_key=business_key,
        key_problems=key_problems,
        active_nav="processes",
    )
