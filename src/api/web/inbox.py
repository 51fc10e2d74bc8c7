"""The inbox: my tasks and my roles' queue, filtered and sorted, refreshed live; claim and release buttons."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from ecomflow.api.web.deps import Page, StaffForm, StaffPage
from ecomflow.api.web.flash import Flash
from ecomflow.api.web.labels import process_title, role_title, step_title
from ecomflow.api.web.refusals import refusal_text
from ecomflow.api.web.rendering import HOME, redirect, render, render_html, safe_next, with_page_cookies
from ecomflow.api.web.task_rows import TaskRow, task_rows
from ecomflow.engine import access
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.errors import EcomflowError
from ecomflow.engine.tasks import actions
from ecomflow.engine.tasks.inbox import InboxFilter, list_inbox

router = APIRouter(prefix="/ui", include_in_schema=False)
SORT_CHOICES = ("due", "priority", "at_risk")
MY_TASKS_LIMIT = 100
QUEUE_PAGE_SIZE = 50
_TRUE = frozenset({"1", "true", "on", "yes"})


@dataclass(frozen=True)
class InboxQuery:
    """The filters and sort of the inbox, as they travel in its URL."""

    role: str = ""
    process: str = ""
    overdue: bool = False
    at_risk: bool = False
    mine: bool = False
    sort: str = "due"
    cursor: str = ""

    @classmethod
    def from_request(cls, request: Request) -> InboxQuery:
        """Read the filters from the query string; an unknown sort falls back to due."""
        params = request.query_params
        flags = {name: params.get(name, "").lower() in _TRUE for name in ("overdue", "at_risk", "mine")}
        sort = params.get("sort", "due")
        return cls(
            role=params.get("role", ""),
            process=params.get("process", ""),
            sort=sort if sort in SORT_CHOICES else "due",
            cursor=params.get("cursor", ""),
            **flags,
        )

    def url(self, path: str = HOME, **changes: Any) -> str:
        """Return the URL of these filters with some changed."""
        query = replace(self, **changes)
        params = {
            "role": query.role,
            "process": query.process,
            "overdue": "1" if query.overdue else "",
            "at_risk": "1" if query.at_risk else "",
            "mine": "1" if query.mine else "",
            "sort": query.sort if query.sort != "due" else "",
            "cursor": query.cursor,
        }
        encoded = urlencode({k: v for k, v in params.items() if v})
        return f"{path}?{encoded}" if encoded else path

    def engine_filter(self, *, mine: bool, state: str | None, limit: int, cursor: str | None) -> InboxFilter:
        """Return the engine's inbox filter for one section."""
        return InboxFilter(
            state=state,
            mine=mine,
            role=self.role or None,
            process=self.process or None,
            overdue=self.overdue,
            at_risk=True if self.at_risk else None,
            sort=self.sort,
            cursor=cursor,
            limit=limit,
        )


@dataclass(frozen=True)
class InboxSections:
    """What the live part of the inbox shows."""

    mine: list[TaskRow]
    queue: list[TaskRow] | None
    next_queue_url: str | None
    error: str | None


def load_sections(page: Page, query: InboxQuery) -> InboxSections:
    """Read my tasks and (unless only mine are asked for) the open queue of my roles."""
    try:
        with read_scope() as session:
            mine, _ = list_inbox(
                session,
                principal=page.user,
                filters=query.engine_filter(mine=True, state=None, limit=MY_TASKS_LIMIT, cursor=None),
            )
            mine_rows = task_rows(session, mine, page)
            if query.mine:
                return InboxSections(mine=mine_rows, queue=None, next_queue_url=None, error=None)
            queue, next_cursor = list_inbox(
                session,
                principal=page.user,
                filters=query.engine_filter(
                    mine=False, state="open", limit=QUEUE_PAGE_SIZE, cursor=query.cursor or None
                ),
            )
            queue_rows = task_rows(session, queue, page)
    except EcomflowError as refused:
        # A stale or edited cursor: say so instead of failing the page.
        return InboxSections(mine=[], queue=[], next_queue_url=None, error=refusal_text(refused, page.t))
    next_url = query.url(cursor=next_cursor) if next_cursor else None
    return InboxSections(mine=mine_rows, queue=queue_rows, next_queue_url=next_url, error=None)


def render_sections(page: Page, query: InboxQuery) -> tuple[str, str]:
    """Render the live part of the inbox; return its HTML and a fingerprint that changes when it does."""
    html = render_html("_inbox_sections.html", page, sections=load_sections(page, query), query=query)
    return html, hashlib.sha256(html.encode()).hexdigest()[:20]


def _filter_choices(page: Page) -> dict[str, list[tuple[str, str]]]:
    definitions, t, user = page.definitions, page.t, page.user
    roles = [key for key in definitions.roles if access.is_manager(user) or key in user.roles]
    return {
        "roles": [(key, role_title(definitions, t, key)) for key in roles],
        "processes": [(key, process_title(definitions, t, key)) for key in definitions.processes],
        "sorts": [(key, t(f"inbox.sort.{key}")) for key in SORT_CHOICES],
    }


@router.get("", response_class=HTMLResponse)
def inbox(page: StaffPage) -> HTMLResponse:
    """Show the inbox."""
    query = InboxQuery.from_request(page.request)
    html, fingerprint = render_sections(page, query)
    return render(
        "inbox.html",
        page,
        query=query,
        sections_html=Markup(html),
        fingerprint=fingerprint,
        live_url=query.url(f"{HOME}/inbox/live"),
        choices=_filter_choices(page),
    )


@router.get("/inbox/live")
def inbox_live(page: StaffPage, known: str = "") -> Response:
    """Answer the page's poll: 204 when nothing changed, else the new HTML of the sections."""
    html, fingerprint = render_sections(page, InboxQuery.from_request(page.request))
    if known == fingerprint:
        return with_page_cookies(Response(status_code=204), page)
    response = HTMLResponse(html, headers={"X-Fingerprint": fingerprint})
    return with_page_cookies(response, page)


@router.post("/tasks/{task_id}/claim")
def claim(task_id: str, page: StaffForm) -> RedirectResponse:
    """Take a task; then go back where the button was."""
    back = safe_next(page.field("next"), f"{HOME}/tasks/{task_id}")
    try:
        with session_scope() as session:
            task = actions.claim_task(session, task_id=task_id, principal=page.user)
            name = step_title(page.definitions, page.t, task.process_key, task.step_key)
    except EcomflowError as refused:
        return redirect(page, back, flash=Flash("error", refusal_text(refused, page.t)))
    return redirect(page, back, flash=Flash("ok", page.t("flash.claimed", step=name)))


@router.post("/tasks/{task_id}/release")
def release(task_id: str, page: StaffForm) -> RedirectResponse:
    """Give a task back to its role's queue; then go back where the button was."""
    back = safe_next(page.field("next"), f"{HOME}/tasks/{task_id}")
    try:
        with session_scope() as session:
            task = actions.release_task(session, task_id=task_id, principal=page.user, reason=page.field("reason"))
            name = step_title(page.definitions, page.t, task.process_key, task.step_key)
    except EcomflowError as refused:
        return redirect(page, back, flash=Flash("error", refusal_text(refused, page.t)))
    return redirect(page, back, flash=Flash("ok", page.t("flash.released", step=name)))
