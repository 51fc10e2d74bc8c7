"""Request dependencies of the web pages: who is looking (session cookie), in which language, and checked forms.

SignInRequired   no valid session: pages redirect to sign-in, the live refresh gets 401
CsrfRefused      a POST without this session's CSRF token: 403
PageRefused      the page is not for this user (403) or does not exist for them (404)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from starlette.datastructures import FormData

from ecomflow.api.web.auth import WebSession, current_session
from ecomflow.api.web.csrf import CSRF_FIELD, csrf_token, new_pre_session_nonce, pre_session_nonce, token_matches
from ecomflow.api.web.flash import Flash, read_flash
from ecomflow.api.web.i18n import LANG_COOKIE, Translator, page_language
from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.people.principals import Principal

# Sent by the inbox's live refresh: it wants a status, not a sign-in page to paste into the inbox.
LIVE_REFRESH_HEADER = "x-live-refresh"


class SignInRequired(Exception):
    """The page needs a signed-in user."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


class PageRefused(Exception):
    """The page is refused with a status and a catalogue message."""

    def __init__(self, status: int, message_key: str, page: Page | None = None) -> None:
        super().__init__(message_key)
        self.status, self.message_key, self.page = status, message_key, page


@dataclass
class Page:
    """Everything a page needs about its request: language, user, CSRF token, notice, definitions and time."""

    request: Request
    t: Translator
    session: WebSession | None
    csrf_nonce: str
    # Set when this visitor had no nonce yet: the response must set the pre-session cookie.
    new_pre_nonce: bool
    definitions: Definitions
    now: datetime
    flash: Flash | None = None
    form: FormData | None = field(default=None, repr=False)

    @property
    def user(self) -> Principal:
        """Return the signed-in user (pages behind staff_page only)."""
        if self.session is None:
            raise SignInRequired()
        return self.session.principal

    @property
    def is_manager(self) -> bool:
        """Tell whether the signed-in user is a manager (the dashboard, reassigning, the Prefect links)."""
        return self.session is not None and access.is_manager(self.session.principal)

    @property
    def csrf(self) -> str:
        """Return the token the page's POST forms carry."""
        return csrf_token(self.csrf_nonce)

    @property
    def here(self) -> str:
        """Return this page's path and query, for coming back after a form."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def field(self, name: str, default: str = "") -> str:
        """Return a text field of the posted form, trimmed; a missing or file field gives the default."""
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    @property
    def zone(self) -> ZoneInfo:
        """Return the team's time zone: times on pages are shown in it."""
        return ZoneInfo(self.definitions.timezone)


def visitor_page(request: Request) -> Page:
    """Describe the request of anyone, signed in or not."""
    now = utcnow()
    # The live refresh polls on its own: only what the user does keeps a session from going idle.
    session = current_session(request, now=now, touch=not request.headers.get(LIVE_REFRESH_HEADER))
    nonce = session.secret if session else pre_session_nonce(request)
    lang = page_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    return Page(
        request=request,
        t=Translator(lang),
        session=session,
        csrf_nonce=nonce or new_pre_session_nonce(),
        new_pre_nonce=session is None and nonce is None,
        definitions=get_definitions(),
        now=now,
        flash=read_flash(request),
    )


def staff_page(page: Annotated[Page, Depends(visitor_page)]) -> Page:
    """Describe the request of a signed-in user, or send them to sign in."""
    if page.session is None:
        raise SignInRequired()
    return page


def manager_page(page: Annotated[Page, Depends(staff_page)]) -> Page:
    """Describe the request of a manager; anyone else gets a 403 page."""
    if not access.may_watch_the_team(page.user):
        raise PageRefused(403, "refused.managers_only", page)
    return page


async def posted_form(request: Request, page: Annotated[Page, Depends(visitor_page)]) -> Page:
    """Read a POSTed form; refuse it unless it carries the CSRF token of this session (or pre-session)."""
    form = await request.form()
    if page.new_pre_nonce or not token_matches(form.get(CSRF_FIELD), page.csrf_nonce):
        raise CsrfRefused()
    page.form = form
    return page


def staff_form(page: Annotated[Page, Depends(posted_form)]) -> Page:
    """A checked form of a signed-in user."""
    return staff_page(page)


def manager_form(page: Annotated[Page, Depends(staff_form)]) -> Page:
    """A checked form of a manager."""
    return manager_page(page)


VisitorPage = Annotated[Page, Depends(visitor_page)]
StaffPage = Annotated[Page, Depends(staff_page)]
ManagerPage = Annotated[Page, Depends(manager_page)]
VisitorForm = Annotated[Page, Depends(posted_form)]
StaffForm = Annotated[Page, Depends(staff_form)]
ManagerForm = Annotated[Page, Depends(manager_form)]
