"""The caller's web sessions over the JSON API: GET /me/sessions lists them, DELETE /me/sessions/{id} ends one,
and POST /users/{name}/tokens/revoke ends them with the tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, WebSession
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.users import find_user
from ecomflow.engine.people.web_sessions import (
    EndReason,
    StartedSession,
    end_web_session,
    session_policy,
    start_web_session,
)
from tests.api.conftest import Caller, assert_error


def _start(name: str, *, minutes_ago: int = 0, agent: str = "Mozilla/5.0 (Windows NT 10.0)") -> StartedSession:
    with session_scope() as session:
        return start_web_session(
            session,
            user=find_user(session, name),
            client_address="10.1.1.1",
            user_agent=agent,
            now=utcnow() - timedelta(minutes=minutes_ago),
            policy=session_policy(),
        )


def _reason(session_id: str) -> str | None:
    with session_scope() as session:
        return session.get(WebSession, session_id).revoke_reason


class TestListMySessions:
    def test_lists_only_the_callers_live_sessions_most_recent_first_without_secrets(
        self, login: Callable[..., Caller]
    ) -> None:
        wu, lin = login("warehouse"), login("customer_service")
        older, newer, ended, _idle = (_start(wu.name, minutes_ago=m) for m in (10, 1, 5, 61))
        lins = _start(lin.name)
        with session_scope() as session:
            end_web_session(session, session_id=ended.row.id, actor=wu.name, reason=EndReason.SIGNED_OUT, now=utcnow())
        answer = wu.get("/me/sessions")
        assert answer.status_code == 200, answer.text
        listed = answer.json()
        assert [item["id"] for item in listed] == [newer.row.id, older.row.id]
        first = listed[0]
        assert set(first) == {
            "id",
            "created_at",
            "last_seen_at",
            "expires_at",
            "idle_expires_at",
            "client_address",
            "user_agent",
        }
        assert (first["client_address"], first["user_agent"]) == ("10.1.1.1", "Mozilla/5.0 (Windows NT 10.0)")
        assert first["expires_at"] == newer.row.expires_at.isoformat().replace("+00:00", "Z")
        assert first["idle_expires_at"] == (newer.row.last_seen_at + timedelta(minutes=60)).isoformat().replace(
            "+00:00", "Z"
        )
        assert newer.secret not in answer.text and newer.row.secret_hash not in answer.text
        assert [item["id"] for item in lin.get("/me/sessions").json()] == [lins.row.id]

    def test_no_sessions_is_an_empty_list(self, login: Callable[..., Caller]) -> None:
        assert login("warehouse").get("/me/sessions").json() == []


class TestEndMySession:
    def test_ends_one_of_the_callers_sessions_and_audits_it(self, login: Callable[..., Caller]) -> None:
        wu = login("warehouse")
        ending, staying = _start(wu.name), _start(wu.name)
        answer = wu.http.delete(f"/me/sessions/{ending.row.id}")
        assert answer.status_code == 204 and answer.content == b""
        assert (_reason(ending.row.id), _reason(staying.row.id)) == ("ended_by_user", None)
        assert [item["id"] for item in wu.get("/me/sessions").json()] == [staying.row.id]
        with session_scope() as session:
            event = session.scalar(select(AuditEvent).where(AuditEvent.type == "web_session.ended"))
        assert (event.actor, event.data) == (
            wu.name,
            {"user": wu.name, "session": ending.row.id, "reason": "ended_by_user"},
        )
        assert_error(wu.http.delete(f"/me/sessions/{ending.row.id}"), 404, "NotFound")

    def test_another_users_session_does_not_exist_for_the_caller(self, login: Callable[..., Caller]) -> None:
        wu, boss = login("warehouse"), login("owner")
        theirs = _start(wu.name)
        body = assert_error(boss.http.delete(f"/me/sessions/{theirs.row.id}"), 404, "NotFound")
        assert theirs.row.id in body["detail"]
        assert _reason(theirs.row.id) is None


class TestRevokeEndsSessions:
    def test_revoking_a_users_tokens_ends_their_web_sessions_and_says_both_counts(
        self, login: Callable[..., Caller]
    ) -> None:
        manager, worker = login("operations"), login("warehouse")
        sessions = [_start(worker.name), _start(worker.name)]
        mine = _start(manager.name)
        answer = manager.post(f"/users/{worker.name}/tokens/revoke")
        assert answer.json() == {"revoked": 1, "web_sessions_revoked": 2}
        assert [_reason(s.row.id) for s in sessions] == ["revoked", "revoked"]
        assert _reason(mine.row.id) is None
        with session_scope() as session:
            events = list(session.scalars(select(AuditEvent).where(AuditEvent.type == "web_session.ended")))
        assert sorted((e.actor, e.data["session"]) for e in events) == sorted(
            (manager.name, s.row.id) for s in sessions
        )
