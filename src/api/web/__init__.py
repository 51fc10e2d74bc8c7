"""The staff web inbox and the manager dashboard under /ui: server-rendered pages on the same app as the API.

The pages sign in with a name and password and keep a session (a database row, its secret in a
signed cookie); the API keeps its bearer tokens and never reads the cookie (it is scoped to /ui).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ecomflow.api.web import (
    attachment_pages,
    catalog_pages,
    dashboard,
    figure_pages,
    gallery,
    inbox,
    instance_page,
    map_pages,
    process_pages,
    session_pages,
    task_page,
)
from ecomflow.api.web.deps import (
    LIVE_REFRESH_HEADER,
    CsrfRefused,
    Page,
    PageRefused,
    SignInRequired,
    VisitorPage,
    visitor_page,
)
from ecomflow.api.web.rendering import HOME, SECURITY_HEADERS, STATIC_PATH, WEB_PACKAGE, render
from ecomflow.api.web.session_pages import LOGIN

__all__ = ["mount_web"]

missing_pages = APIRouter(prefix="/ui", include_in_schema=False)


@missing_pages.get("/{path:path}")
def _missing_page(path: str, page: VisitorPage) -> RedirectResponse:
    """Send /ui/ to the inbox; answer any other unknown page with an HTML 404 in the visitor's language."""
    if not path:
        return RedirectResponse(HOME, status_code=303)
    raise PageRefused(404, "refused.page_missing", page)


def mount_web(app: FastAPI) -> None:
    """Add the pages, their static files and their error pages to the application."""
    app.mount(STATIC_PATH, StaticFiles(packages=[(WEB_PACKAGE, "static")]), name="web-static")
    for module in (
        session_pages,
        inbox,
        task_page,
        attachment_pages,
        gallery,
        dashboard,
        figure_pages,
        process_pages,
        map_pages,
        instance_page,
        catalog_pages,
    ):
        app.include_router(module.router)
    app.include_router(missing_pages)  # last: only what no page above matched

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get(LIVE_REFRESH_HEADER):
            return Response(status_code=401, headers=SECURITY_HEADERS)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN}?{urlencode({'next': target})}", status_code=303, headers=SECURITY_HEADERS)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> HTMLResponse:
        page = await run_in_threadpool(visitor_page, request)
        return _error_page(page, 403, "refused.csrf")

    @app.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused) -> HTMLResponse:
        page = exc.page or await run_in_threadpool(visitor_page, request)
        return _error_page(page, exc.status, exc.message_key)


def _error_page(page: Page, status: int, message_key: str) -> HTMLResponse:
    return render("error.html", page, status=status, message=page.t(message_key), code=status)
