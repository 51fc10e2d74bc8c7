"""Web sessions over HTTP: ended by sign-out, a new password, revocation, idle time and lifetime; the sign-in limit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from ecomflow.api.web.auth import SESSION_COOKIE
from ecomflow.api.web.signing import sign, unsign
from ecomflow.cli import app as cli
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import AuditEvent, SignInFailure, User, WebSession
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.people.sign_in_limits import record_sign_in_failure, sign_in_limits
from ecomflow.engine.people.users import set_password
from tests.web.conftest import PASSWORD, WebServer, csrf_of, sign_in

LOCKED_ZH = "登录失败次数过多，该用户名已被锁定"
LOCKED_EN = "Too many failed sign-ins: this user name is locked until"
ADDRESS_LOCKED_EN = "Too many failed sign-ins from your network address"


@dataclass
class Clock:
    """The pages' clock (deps.utcnow), moved by the test instead of sleeping."""

    now: datetime = field(default_factory=utcnow)

    def move(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Stop the pages' clock at the real now; the server runs in a thread of this process, so it sees the patch."""
    fixed = Clock()
    monkeypatch.setattr("ecomflow.api.web.deps.utcnow", lambda: fixed.now)
    return fixed


@pytest.fixture(autouse=True)
def _forget_failures() -> Iterator[None]:
    """Each test starts and leaves without counted failures, so one test's lock never refuses another's sign-in."""
    yield
    with session_scope() as session:
        session.execute(delete(SignInFailure))


def _rows_of(name: str) -> list[WebSession]:
    with session_scope() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
        return list(
            session.scalars(select(WebSession).where(WebSession.user_id == user_id).order_by(WebSession.created_at))
        )


def _row_of(cookie: str) -> WebSession:
    secret = unsign("session", cookie)
    with session_scope() as session:
        return session.scalar(
            select(WebSession).where(WebSession.secret_hash == hashlib.sha256(secret.encode()).hexdigest())
        )


def _with_cookie(server: WebServer, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie}, timeout=30)


def _is_sent_to_sign_in(answer: httpx.Response) -> bool:
    return answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=")


def _try(http: httpx.Client, name: str, password: str) -> httpx.Response:
    form = {"csrf_token": csrf_of(http.get("/ui/login").text), "name": name, "password": password, "next": "/ui"}
    return http.post("/ui/login", data=form)


@pytest.fixture
def visitor(web_server: WebServer) -> Iterator[httpx.Client]:
    """A browser at its own address (uvicorn takes X-Forwarded-For from 127.0.0.1, as from a proxy)."""
    with httpx.Client(base_url=web_server.url, timeout=30, headers={"X-Forwarded-For": "10.20.0.1"}) as http:
        yield http


class TestSessionRows:
    def test_sign_in_stores_a_row_and_the_cookie_carries_only_a_signed_random_secret(self, staff, web_server):
        headers = {"User-Agent": "TestBrowser/1.0", "X-Forwarded-For": "10.9.8.7"}
        with sign_in(web_server, "wu", headers=headers) as http:
            cookie = http.cookies[SESSION_COOKIE]
            assert http.get("/ui").status_code == 200
        row = _row_of(cookie)
        assert (row.client_address, row.user_agent, row.revoked_at) == ("10.9.8.7", "TestBrowser/1.0", None)
        assert row.id not in cookie and row.secret_hash not in cookie
        assert row.expires_at - row.created_at == timedelta(hours=12)

    def test_signing_in_again_gives_a_new_secret_and_ends_the_old_session(self, staff, web_server):
        with sign_in(web_server, "wu") as http:
            old = http.cookies[SESSION_COOKIE]
            token = csrf_of(http.get("/ui").text)
            again = http.post("/ui/login", data={"csrf_token": token, "name": "wu", "password": PASSWORD})
            new = again.cookies[SESSION_COOKIE]
            assert new != old and http.get("/ui").status_code == 200
        assert _row_of(old).revoke_reason == "replaced"
        with _with_cookie(web_server, old) as replayed:
            assert _is_sent_to_sign_in(replayed.get("/ui"))

    def test_sign_out_ends_the_row_so_a_replayed_cookie_is_refused(self, staff, web_server):
        with sign_in(web_server, "wang") as http:
            cookie = http.cookies[SESSION_COOKIE]
            assert http.post("/ui/logout", data={"csrf_token": csrf_of(http.get("/ui").text)}).status_code == 303
        row = _row_of(cookie)
        assert row.revoke_reason == "signed_out" and row.revoked_at is not None
        with _with_cookie(web_server, cookie) as replayed:
            assert _is_sent_to_sign_in(replayed.get("/ui"))
        with session_scope() as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.type == "web_session.ended").order_by(AuditEvent.id.desc())
            )
        assert (event.actor, event.data) == ("wang", {"user": "wang", "session": row.id, "reason": "signed_out"})

    def test_a_new_password_and_users_revoke_end_the_sessions(self, staff, web_server):
        with sign_in(web_server, "lin") as by_password, sign_in(web_server, "zhou") as by_revoke:
            with session_scope() as session:
                set_password(session, name="lin", password=PASSWORD)
            revoked = CliRunner().invoke(cli, ["users", "revoke", "zhou"])
            assert "and 1 web session(s) of zhou" in revoked.output
            assert _is_sent_to_sign_in(by_password.get("/ui")) and _is_sent_to_sign_in(by_revoke.get("/ui"))
            reasons = (
                _row_of(by_password.cookies[SESSION_COOKIE]).revoke_reason,
                _row_of(by_revoke.cookies[SESSION_COOKIE]).revoke_reason,
            )
        assert reasons == ("password_changed", "revoked")

    def test_a_forged_cookie_and_an_unknown_secret_open_nothing(self, staff, web_server):
        for cookie in (sign("session", "a-secret-nobody-was-given"), "eyJ1aWQiOjF9.bm90LWEtc2lnbmF0dXJl"):
            with _with_cookie(web_server, cookie) as http:
                assert _is_sent_to_sign_in(http.get("/ui"))


class TestTimeouts:
    def test_a_session_unused_for_60_minutes_is_refused_and_use_keeps_it(self, staff, web_server, clock):
        with sign_in(web_server, "wu") as kept, sign_in(web_server, "wu") as left:
            clock.move(minutes=59)
            assert kept.get("/ui").status_code == 200
            clock.move(minutes=59)
            assert kept.get("/ui").status_code == 200
            assert _is_sent_to_sign_in(left.get("/ui"))

    def test_the_live_refresh_does_not_keep_a_session_from_going_idle(self, staff, web_server, clock):
        with sign_in(web_server, "wu") as http:
            for _ in range(2):
                clock.move(minutes=25)
                assert http.get("/ui/inbox/live", headers={"X-Live-Refresh": "1"}).status_code in (200, 204)
            clock.move(minutes=10)  # 60 minutes since the last thing the user did
            assert http.get("/ui/inbox/live", headers={"X-Live-Refresh": "1"}).status_code == 401

    def test_last_seen_is_written_at_most_once_a_minute(self, staff, web_server, clock):
        with sign_in(web_server, "wu") as http:
            row_id, signed_in_at = _row_of(http.cookies[SESSION_COOKIE]).id, clock.now
            clock.move(seconds=30)
            http.get("/ui")
            with session_scope() as session:
                assert session.get(WebSession, row_id).last_seen_at == signed_in_at
            seen = clock.move(seconds=31)
            http.get("/ui")
            with session_scope() as session:
                assert session.get(WebSession, row_id).last_seen_at == seen

    def test_a_session_past_its_12_hours_is_refused_however_busy(self, staff, web_server, clock):
        with sign_in(web_server, "wu") as http:
            row_id = _row_of(http.cookies[SESSION_COOKIE]).id

            def busy_until(moment: datetime) -> None:
                clock.now = moment
                with session_scope() as session:
                    session.execute(update(WebSession).where(WebSession.id == row_id).values(last_seen_at=moment))

            start = clock.now
            busy_until(start + timedelta(hours=12) - timedelta(seconds=1))
            assert http.get("/ui").status_code == 200
            busy_until(start + timedelta(hours=12))
            assert _is_sent_to_sign_in(http.get("/ui"))


class TestSignInLimit:
    def test_the_sixth_try_is_refused_as_locked_even_with_the_right_password_until_the_lock_ends(
        self, staff, visitor, clock
    ):
        answers = [_try(visitor, "wu", "wrong-password") for _ in range(5)]
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
        sixth = _try(visitor, "wu", PASSWORD)
        assert sixth.status_code == 429 and LOCKED_ZH in sixth.text
        # The fifth failure locked the name for 15 minutes;
        # the page names the first whole minute after, in the team's zone.
        until = (clock.now + timedelta(minutes=15)).astimezone(ZoneInfo(get_definitions().timezone))
        assert (until.replace(second=0, microsecond=0) + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M") in sixth.text
        assert 0 < int(sixth.headers["retry-after"]) <= 15 * 60
        assert SESSION_COOKIE not in sixth.cookies
        clock.move(minutes=15)
        assert _try(visitor, "wu", PASSWORD).status_code == 303

    def test_an_unknown_name_is_locked_with_the_same_message_in_english(self, staff, visitor):
        visitor.headers["Accept-Language"] = "en"
        for name in ("wang", "no-such-user"):
            answers = [_try(visitor, name, "wrong-password") for _ in range(6)]
            assert [a.status_code for a in answers] == [401] * 4 + [429] * 2, name
            assert LOCKED_EN in answers[-1].text

    def test_twenty_failures_lock_the_address_for_every_name(self, staff, web_server, clock):
        with session_scope() as session:
            for attempt in range(19):
                record_sign_in_failure(
                    session,
                    name=f"guess-{attempt}",
                    client_address="10.30.0.1",
                    now=clock.now,
                    limits=sign_in_limits(),
                )
        headers = {"Accept-Language": "en", "X-Forwarded-For": "10.30.0.1"}
        with httpx.Client(base_url=web_server.url, timeout=30, headers=headers) as attacker:
            assert _try(attacker, "guess-19", "wrong-password").status_code == 429
            right = _try(attacker, "lin", PASSWORD)
        assert right.status_code == 429 and ADDRESS_LOCKED_EN in right.text
        with httpx.Client(base_url=web_server.url, timeout=30, headers={"X-Forwarded-For": "10.30.0.2"}) as colleague:
            assert _try(colleague, "lin", PASSWORD).status_code == 303

    def test_each_failure_is_audited_with_the_address_and_without_the_password(self, staff, visitor):
        _try(visitor, "zhou", "a-guessed-password")
        with session_scope() as session:
            event = session.scalar(
                select(AuditEvent).where(AuditEvent.type == "user.sign_in_failed").order_by(AuditEvent.id.desc())
            )
        assert event.data == {"name": "zhou", "client_address": "10.20.0.1", "locked": None, "locked_until": None}
        assert "a-guessed-password" not in str(event.data)
