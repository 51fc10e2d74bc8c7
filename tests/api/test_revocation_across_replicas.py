"""Two API processes on one database: revoking access through one is refused by the other on the next request.

Authentication reads the database on every request (api/deps.py): no replica may keep trusting a token
or a role that another replica, the CLI or the engine has just taken away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import delete

from ecomflow.engine.db.models import UserRole
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.users import find_user, revoke_access
from tests.api.conftest import ApiServer, Caller, client
from tests.factories import make_task
from tests.served_app import served_app


@pytest.fixture(scope="module")
def second_replica(api_server: ApiServer) -> Iterator[ApiServer]:
    """Another app instance of its own (own engine pool, own event loop) on the same database."""
    with served_app(ready_path="/health") as running:
        assert running.url != api_server.url
        yield running


@pytest.fixture
def on_both(
    login: Callable[..., Caller], second_replica: ApiServer
) -> Iterator[Callable[..., tuple[Caller, httpx.Client]]]:
    """A user with a client on the first replica and one with the same token on the second."""
    opened: list[httpx.Client] = []

    def make(*roles: str) -> tuple[Caller, httpx.Client]:
        caller = login(*roles)
        other = client(second_replica, caller.token)
        opened.append(other)
        # Both replicas have just accepted the token: anything they could keep from it, they now have.
        assert caller.get("/me").status_code == 200
        assert other.get("/me").status_code == 200
        return caller, other

    yield make
    for http in opened:
        http.close()


def test_a_token_revoked_on_one_replica_is_refused_by_the_other(on_both) -> None:
    caller, other = on_both("customer_service")

    revoked = caller.post("/me/tokens/revoke")

    assert revoked.status_code == 200 and revoked.json() == {"revoked": 1}
    refused = other.get("/me")
    assert refused.status_code == 401
    assert refused.json()["error"] == "Unauthorized"
    assert caller.get("/me").status_code == 401


def test_access_revoked_in_the_database_is_refused_by_every_replica(on_both) -> None:
    caller, other = on_both("warehouse")

    with session_scope() as session:
        revoke_access(session, name=caller.name, actor="admin")

    assert other.post("/tasks/no-such-task/claim").status_code == 401
    assert caller.get("/tasks").status_code == 401


def test_a_deactivated_user_is_refused_by_every_replica(on_both) -> None:
    caller, other = on_both("warehouse")

    with session_scope() as session:
        find_user(session, caller.name).active = False

    assert other.get("/me").status_code == 401
    assert caller.get("/tasks").status_code == 401


def test_a_role_taken_away_is_gone_on_the_next_request_to_the_other_replica(on_both) -> None:
    caller, other = on_both("warehouse", "customer_service")

    with session_scope() as session:
        user = find_user(session, caller.name)
        session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role == "customer_service"))

    me = other.get("/me")
    assert me.status_code == 200
    assert me.json()["roles"] == ["warehouse"]
    assert caller.get("/me").json()["roles"] == ["warehouse"]


def test_a_user_without_roles_is_still_authenticated(on_both) -> None:
    caller, other = on_both("warehouse")

    with session_scope() as session:
        session.execute(delete(UserRole).where(UserRole.user_id == find_user(session, caller.name).id))

    me = other.get("/me")
    assert me.status_code == 200
    assert me.json() == {"name": caller.name, "roles": [], "is_manager": False}


# GET /tasks authenticates inside its own read transaction (api/deps.py authenticated_read), not through
# current_principal: it must refuse and narrow on the very next request all the same.
def _inbox_ids(http: httpx.Client) -> list[str]:
    answer = http.get("/tasks")
    assert answer.status_code == 200, answer.text
    return [task["id"] for task in answer.json()["items"]]


def test_the_inbox_refuses_a_token_revoked_on_the_other_replica(on_both) -> None:
    caller, other = on_both("warehouse")
    assert other.get("/tasks").status_code == 200

    assert caller.post("/me/tokens/revoke").status_code == 200

    refused = other.get("/tasks")
    assert refused.status_code == 401
    assert refused.json()["error"] == "Unauthorized"


def test_the_inbox_loses_a_role_taken_away_on_the_next_request_to_the_other_replica(on_both) -> None:
    task_id = make_task(step="inspect")  # a warehouse task
    caller, other = on_both("warehouse", "customer_service")
    assert task_id in _inbox_ids(other)

    with session_scope() as session:
        user = find_user(session, caller.name)
        session.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role == "warehouse"))

    assert task_id not in _inbox_ids(other)
    assert task_id not in _inbox_ids(caller.http)
