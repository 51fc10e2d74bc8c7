"""Render pages with Jinja2: autoescaped HTML, a strict content security policy, times in the team's zone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ecomflow.api.web.csrf import CSRF_FIELD, set_pre_session_cookie
from ecomflow.api.web.deps import Page
from ecomflow.api.web.flash import Flash, clear_flash, set_flash

# Templates and static files ship as package data of this package.
WEB_PACKAGE = "ecomflow.api.web"
STATIC_PATH = "/ui/static"
HOME = "/ui"

# Scripts and styles come from our static files only; no page may be framed (clickjacking).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """Show a moment as YYYY-MM-DD HH:MM in the team's time zone."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "—"


def iso_time(moment: datetime | None) -> str:
    """Give a moment as ISO 8601 for a <time datetime> attribute."""
    return moment.isoformat() if moment else ""


def hours(seconds: float | None) -> str:
    """Show a duration in hours with one decimal, or — when there is none."""
    return "—" if seconds is None else f"{seconds / 3600:.1f}"


def percent(rate: float | None) -> str:
    """Show a fraction as a whole percentage, or — when there is none."""
    return "—" if rate is None else f"{rate * 100:.0f}%"


def money(amount: Decimal | None) -> str:
    """Show an amount of money as 1,234.50, or — when there is none."""
    return "—" if amount is None else f"{amount:,.2f}"


def percent_fine(rate: float | None) -> str:
    """Show a small fraction (a click-through rate) as a percentage with two decimals."""
    return "—" if rate is None else f"{rate * 100:.2f}%"


_environment = Environment(
    loader=PackageLoader(WEB_PACKAGE, "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(
    local_time=local_time, iso_time=iso_time, hours=hours, percent=percent, percent_fine=percent_fine, money=money
)
_environment.globals.update(STATIC_PATH=STATIC_PATH, CSRF_FIELD=CSRF_FIELD, HOME=HOME)


def render_html(template: str, page: Page, **context: Any) -> str:
    """Render a template (or fragment) to a string with the page in its context."""
    return _environment.get_template(template).render(page=page, t=page.t, **context)


def with_page_cookies(response: Response, page: Page) -> Response:
    """Add the security headers, the visitor's new pre-session cookie and the shown notice's removal."""
    response.headers.update(SECURITY_HEADERS)
    if page.new_pre_nonce:
        set_pre_session_cookie(response, page.request, page.csrf_nonce)
    if page.flash is not None:
        clear_flash(response)
    return response


def render(template: str, page: Page, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a whole page."""
    return with_page_cookies(HTMLResponse(render_html(template, page, **context), status_code=status), page)


def safe_next(target: str | None, default: str = HOME) -> str:
    """Return target if it is a path of these pages, else default: redirects never leave the site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(HOME) or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(page: Page, target: str, *, flash: Flash | None = None) -> RedirectResponse:
    """Answer a form with 303 See Other (the browser then GETs the target), optionally with a notice."""
    response = RedirectResponse(target, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    if page.new_pre_nonce:
        set_pre_session_cookie(response, page.request, page.csrf_nonce)
    if flash is not None:
        set_flash(response, page.request, flash)
    return response
