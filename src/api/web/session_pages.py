"""Signing in and out, and the language switch."""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from ecomflow.api.web.auth import COOKIE_PATH, end_session, set_cookie, start_session
from ecomflow.api.web.csrf import PRE_SESSION_COOKIE
from ecomflow.api.web.deps import VisitorForm, VisitorPage, posted_form
from ecomflow.api.web.flash import Flash
from ecomflow.api.web.i18n import LANG_COOKIE, LANGUAGES
from ecomflow.api.web.rendering import HOME, redirect, render, safe_next
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Unauthorized
from ecomflow.engine.people.users import find_user, verify_password

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
    """Check the name and password; on success start a session with a fresh nonce."""
    name, password, target = page.field("name"), page.form.get("password"), safe_next(page.field("next"))
    if not name or not isinstance(password, str) or not password:
        return render("login.html", page, status=422, next=target, name=name, error=page.t("login.missing"))
    try:
        with session_scope() as session:
            verify_password(session, name=name, password=password)
            user = find_user(session, name)
    except Unauthorized:
        # One message for an unknown name and a wrong password: the page tells no one who has an account.
        return render("login.html", page, status=401, next=target, name=name, error=page.t("login.wrong"))
    response = redirect(page, target)
    start_session(response, page.request, user=user, now=page.now)
    response.delete_cookie(PRE_SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def sign_out(request: Request, page: VisitorPage) -> RedirectResponse:
    """End the session and go back to the sign-in form; with no session left there is nothing to check or end."""
    if page.session is not None:
        page = await posted_form(request, page)
    response = redirect(page, LOGIN, flash=Flash("ok", page.t("login.signed_out")))
    end_session(response)
    return response


@router.post("/lang")
def switch_language(page: VisitorForm) -> RedirectResponse:
    """Remember the chosen language in a cookie and show the same page again."""
    response = redirect(page, safe_next(page.field("next")))
    language = page.field("lang")
    if language in LANGUAGES:
        set_cookie(response, page.request, LANG_COOKIE, language, max_age=LANGUAGE_COOKIE_LIFETIME)
    return response
