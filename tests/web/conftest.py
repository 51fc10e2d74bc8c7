"""The web pages over real HTTP and in headless Chromium: one server, one set of staff and one browser per module."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.lifecycle import start_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import set_password
from ecomflow.engine.tasks.actions import claim_task
from ecomflow.engine.tasks.step_tasks import open_task
from ecomflow.sample_data import return_params
from tests.conftest import empty_all_tables
from tests.factories import make_user, starter
from tests.served_app import ServedApp, served_app, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct-horse-42"
# Who works here in every web test module: name → roles.
STAFF = {
    "lin": ("customer_service",),
    "wu": ("warehouse",),
    "wang": ("warehouse",),
    "zhou": ("operations",),
    "mei": ("visual",),
    "li": ("product",),
}


WebServer = ServedApp


@pytest.fixture(scope="module")
def web_server(database_url: str) -> Iterator[WebServer]:
    with served_app(ready_path="/ui/login") as running:
        yield running


@pytest.fixture(scope="module")
def staff(web_server: WebServer) -> dict[str, Principal]:
    """Empty the database once for the module and create the staff, each with PASSWORD."""
    empty_all_tables()
    people = {}
    for name, roles in STAFF.items():
        people[name], _ = make_user(name=name, roles=roles)
        with session_scope() as session:
            set_password(session, name=name, password=PASSWORD)
    return people


@pytest.fixture(autouse=True)
def _server_settles(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let each server test's background deliveries finish before the next test starts."""
    yield
    if "web_server" in request.fixturenames:
        server = request.getfixturevalue("web_server")
        wait_for(server.is_idle, timeout=30, what="the web server's in-flight requests")


def csrf_of(html: str) -> str:
    """Return the CSRF token of the first form of a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


@contextmanager
def sign_in(server: WebServer, name: str, *, password: str = PASSWORD, **client_options: Any) -> Iterator[httpx.Client]:
    """Give an HTTP client signed in to the pages as the user (redirects not followed)."""
    with httpx.Client(base_url=server.url, timeout=30, **client_options) as http:
        login = http.get("/ui/login")
        form = {"csrf_token": csrf_of(login.text), "name": name, "password": password, "next": "/ui"}
        answer = http.post("/ui/login", data=form)
        assert answer.status_code == 303, answer.text
        yield http


def new_task(
    *,
    process: str = "returns_exchange",
    step: str = "inspect",
    params: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    claimed_by: str | None = None,
) -> str:
    """Start an instance (no flow run) and open one of its tasks, claimed if asked; return the task id."""
    definitions = get_definitions()
    if params is None and process == "returns_exchange":
        params = return_params()
    with session_scope() as session:
        instance = start_instance(
            session,
            definitions=definitions,
            process_key=process,
            business_key=f"WEB-{uuid.uuid4().hex[:8]}",
            params=params or {},
            principal=starter(),
            start_run=False,
        )
        task = open_task(
            session, instance_id=instance.id, step=definitions.process(process).step(step), context=context
        )
        task_id = task.id
    if claimed_by is not None:
        with session_scope() as session:
            claim_task(
                session, task_id=task_id, principal=Principal(name=claimed_by, roles=frozenset(STAFF[claimed_by]))
            )
    return task_id
