"""Signing in and out, and the language switch."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ecomflow.api.web.auth import (
    COOKIE_PATH,
    clear_session_cookie,
    client_address,
    end_current_session,
    set_cookie,
    set_session_cookie,
)
from ecomflow.api.web.csrf import PRE_SESSION_COOKIE
from ecomflow.api.web.deps import Page, VisitorForm, VisitorPage, posted_form
from ecomflow.api.web.flash import Flash
from ecomflow.api.web.i18n import LANG_COOKIE, LANGUAGES
from ecomflow.api.web.rendering import HOME, local_time, redirect, render, safe_next
from ecomflow.engine.errors import TooManyAttempts, Unauthorized
from ecomflow.engine.people.sign_in import sign_in as check_and_start_session
from ecomflow.engine.people.sign_in_limits import LimitScope

router = APIRouter(prefix="/ui", include_in_schema=False)
LOGIN = "/ui/login"
LANGUAGE_COOKIE_LIFETIME = timedelta(days=365)


@router.get("/login", response_class=HTMLResponse)
def login_page(page: VisitorPage, next: str = HOME) -> Response:
    """Show the sign-in form; someone signed in goes straight on."""
    if page.session is not None:
        return redirect(page, safe_next(next))
    return render("login.html", page, next=safe_next(next), name="", error=None)


@router.post("/login", response_class=HTMLResponse)
def sign_in(page: VisitorForm) -> Response:
    """Check the name and password within the rate limit; on success start a new session with a fresh secret."""
    name, password, target = page.field("name"), page.form.get("password"), safe_next(page.field("next"))
    if not name or not isinstance(password, str) or not password:
        return render("login.html", page, status=422, next=target, name=name, error=page.t("login.missing"))
    try:
        signed_in = check_and_start_session(
            name=name,
            password=password,
            client_address=client_address(page.request),
            user_agent=page.request.headers.get("user-agent"),
            now=page.now,
            replacing=page.session.id if page.session else None,
        )
    except TooManyAttempts as locked:
        return _locked_page(page, locked, next=target, name=name)
    except Unauthorized:
        # One message for an unknown name and a wrong password: the page tells no one who has an account.
        return render("login.html", page, status=401, next=target, name=name, error=page.t("login.wrong"))
    response = redirect(page, target)
    set_session_cookie(response, page.request, secret=signed_in.secret, expires_at=signed_in.expires_at, now=page.now)
    response.delete_cookie(PRE_SESSION_COOKIE, path=COOKIE_PATH)
    return response


def _locked_page(page: Page, locked: TooManyAttempts, *, next: str, name: str) -> Response:
    """Say that sign-in is locked, for the name or the address, and until when (in the team's time zone)."""
    until = locked.about["until"]
    shown = local_time(_ceil_to_minute(until), page.zone)
    by_name = locked.about["scope"] == LimitScope.NAME
    error = page.t("login.locked_name", until=shown) if by_name else page.t("login.locked_address", until=shown)
    response = render("login.html", page, status=429, next=next, name=name, error=error)
    response.headers["Retry-After"] = str(max(1, int((until - page.now).total_seconds())))
    return response


def _ceil_to_minute(moment: datetime) -> datetime:
    # Pages show minutes: rounding down would name a moment at which the lock still holds.
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


@router.post("/logout")
async def sign_out(request: Request, page: VisitorPage) -> RedirectResponse:
    """End the session (its row, not only the cookie) and go back to sign-in.

    Without a session there is nothing to end.
    """
    if page.session is not None:
        page = await posted_form(request, page)
        await run_in_threadpool(end_current_session, page.session, now=page.now)
    response = redirect(page, LOGIN, flash=Flash("ok", page.t("login.signed_out")))
    clear_session_cookie(response)
    return response


@router.post("/lang")
def switch_language(page: VisitorForm) -> RedirectResponse:
    """Remember the chosen language in a cookie and show the same page again."""
    response = redirect(page, safe_next(page.field("next")))
    language = page.field("lang")
    if language in LANGUAGES:
        set_cookie(response, page.request, LANG_COOKIE, language, max_age=LANGUAGE_COOKIE_LIFETIME)
    return response
