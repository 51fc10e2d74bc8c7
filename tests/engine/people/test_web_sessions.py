"""Web sessions as rows: started with a fresh secret stored only hashed, live until ended or timed out.

Each end is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from ecomflow.cli import app as cli
from ecomflow.engine.db.models import AuditEvent, Base, User, WebSession
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import NotFound
from ecomflow.engine.people.users import find_user, revoke_access, set_password
from ecomflow.engine.people.web_sessions import (
    EndReason,
    SessionPolicy,
    StartedSession,
    _end,  # the compare-and-set a race would reach
    end_own_web_session,
    end_timed_out_web_sessions,
    end_web_session,
    find_live_web_session,
    hash_session_secret,
    list_live_web_sessions,
    session_policy,
    start_web_session,
    touch_web_session,
)
from ecomflow.engine.sla.sweeper import sweep_once
from tests.factories import make_user

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = SessionPolicy(lifetime=timedelta(hours=12), idle=timedelta(minutes=60), touch_after=timedelta(minutes=1))


def _start(
    name: str, *, now: datetime = T0, user_agent: str | None = "Mozilla/5.0", address: str = "10.1.2.3"
) -> StartedSession:
    with session_scope() as session:
        return start_web_session(
            session,
            user=find_user(session, name),
            client_address=address,
            user_agent=user_agent,
            now=now,
            policy=POLICY,
        )


def _live(secret: str, *, now: datetime) -> WebSession | None:
    with session_scope() as session:
        found = find_live_web_session(session, secret=secret, now=now, policy=POLICY)
        return found[0] if found else None


def _row(session_id: str) -> WebSession:
    with session_scope() as session:
        return session.get(WebSession, session_id)


def _ended_events() -> list[tuple[str, dict]]:
    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.type == "web_session.ended").order_by(AuditEvent.id)
        )
        return [(event.actor, event.data) for event in events]


@pytest.fixture
def mei(clean_db: str) -> str:
    make_user(name="mei", roles=("warehouse",))
    return "mei"


class TestStartWebSession:
    def test_the_row_keeps_only_the_secrets_hash_and_the_start_is_audited(self, mei: str) -> None:
        started = _start(mei)
        assert started.row.secret_hash == hash_session_secret(started.secret)
        with session_scope() as session:
            stored = [
                str(value)
                for table in Base.metadata.sorted_tables
                for row in session.execute(text(f"SELECT * FROM {table.name}"))
                for value in row
            ]
            event = session.scalar(select(AuditEvent).where(AuditEvent.type == "web_session.started"))
        assert not any(started.secret in value for value in stored)
        assert (event.actor, event.data) == (
            mei,
            {"user": mei, "session": started.row.id, "client_address": "10.1.2.3"},
        )

    def test_every_start_gets_a_new_secret_and_id(self, mei: str) -> None:
        first, second = _start(mei), _start(mei)
        assert first.secret != second.secret and first.row.id != second.row.id
        assert len(first.secret) >= 40  # 32 random bytes, URL-safe

    def test_the_lifetime_starts_now_and_the_user_agent_is_cut_to_200_characters(self, mei: str) -> None:
        started = _start(mei, user_agent="x" * 5000)
        row = _row(started.row.id)
        assert (row.created_at, row.last_seen_at, row.expires_at) == (T0, T0, T0 + timedelta(hours=12))
        assert row.user_agent == "x" * 200 and row.client_address == "10.1.2.3"


class TestFindLiveWebSession:
    def test_a_session_lives_until_it_sits_idle_for_the_idle_time(self, mei: str) -> None:
        secret = _start(mei).secret
        assert _live(secret, now=T0 + timedelta(minutes=59, seconds=59)) is not None
        assert _live(secret, now=T0 + timedelta(minutes=60)) is None

    def test_use_keeps_it_alive_but_never_past_its_lifetime(self, mei: str) -> None:
        started = _start(mei)
        for minute in range(50, 12 * 60, 50):
            with session_scope() as session:
                assert touch_web_session(
                    session, session_id=started.row.id, now=T0 + timedelta(minutes=minute), policy=POLICY
                )
        assert _live(started.secret, now=T0 + timedelta(hours=11, minutes=59)) is not None
        assert POLICY.ends_if_unused(_row(started.row.id)) == T0 + timedelta(hours=12)  # not 60 minutes after 11:40
        assert _live(started.secret, now=T0 + timedelta(hours=12)) is None

    def test_an_ended_session_an_unknown_secret_and_an_inactive_user_open_nothing(self, mei: str) -> None:
        ended, kept = _start(mei), _start(mei)
        with session_scope() as session:
            end_web_session(session, session_id=ended.row.id, actor=mei, reason=EndReason.SIGNED_OUT, now=T0)
        assert _live(ended.secret, now=T0) is None
        assert _live("not-a-secret", now=T0) is None
        assert _live(kept.secret, now=T0) is not None
        with session_scope() as session:
            session.execute(update(User).where(User.name == mei).values(active=False))
        assert _live(kept.secret, now=T0) is None


class TestTouchWebSession:
    def test_writes_at_most_once_per_touch_interval(self, mei: str) -> None:
        started = _start(mei)
        moments = [T0 + timedelta(seconds=s) for s in (30, 60, 90, 125)]
        wrote = []
        for moment in moments:
            with session_scope() as session:
                wrote.append(touch_web_session(session, session_id=started.row.id, now=moment, policy=POLICY))
        assert wrote == [False, True, False, True]
        assert _row(started.row.id).last_seen_at == moments[-1]

    def test_never_revives_a_session_that_sat_idle_too_long(self, mei: str) -> None:
        started = _start(mei)
        with session_scope() as session:
            assert not touch_web_session(
                session, session_id=started.row.id, now=T0 + timedelta(minutes=61), policy=POLICY
            )
        assert _live(started.secret, now=T0 + timedelta(minutes=61)) is None


class TestEndWebSessions:
    def test_an_end_is_recorded_once_with_its_reason(self, mei: str) -> None:
        started = _start(mei)
        for _ in range(2):
            with session_scope() as session:
                end_web_session(session, session_id=started.row.id, actor=mei, reason=EndReason.SIGNED_OUT, now=T0)
        row = _row(started.row.id)
        assert (row.revoked_at, row.revoke_reason) == (T0, "signed_out")
        assert _ended_events() == [(mei, {"user": mei, "session": started.row.id, "reason": "signed_out"})]

    def test_an_ender_that_read_the_session_before_another_ended_it_records_nothing(self, mei: str) -> None:
        started = _start(mei)
        stale = [(started.row.id, mei)]  # what a racing sweeper read before this end committed
        with session_scope() as session:
            end_web_session(session, session_id=started.row.id, actor=mei, reason=EndReason.SIGNED_OUT, now=T0)
        with session_scope() as session:
            assert _end(session, stale, actor="system", reason=EndReason.IDLE, now=T0 + timedelta(hours=1)) == []
        assert (_row(started.row.id).revoke_reason, len(_ended_events())) == ("signed_out", 1)

    def test_a_new_password_ends_every_session_of_the_user_only(self, mei: str) -> None:
        make_user(name="wu", roles=("warehouse",))
        mine, other = [_start(mei), _start(mei)], _start("wu")
        with session_scope() as session:
            set_password(session, name=mei, password="a brand new secret")
        assert [_row(s.row.id).revoke_reason for s in mine] == ["password_changed", "password_changed"]
        assert _row(other.row.id).revoked_at is None
        assert {data["session"] for _, data in _ended_events()} == {s.row.id for s in mine}

    def test_revoking_a_users_access_ends_tokens_and_sessions_and_counts_both(self, mei: str) -> None:
        _start(mei), _start(mei)
        with session_scope() as session:
            revoked = revoke_access(session, name=mei, actor="boss")
        assert (revoked.tokens, revoked.web_sessions) == (1, 2)
        assert [(actor, data["reason"]) for actor, data in _ended_events()] == [("boss", "revoked")] * 2
        with session_scope() as session, pytest.raises(NotFound):
            revoke_access(session, name="nobody")

    def test_the_cli_revoke_says_both_counts(self, mei: str) -> None:
        started = _start(mei)
        result = CliRunner().invoke(cli, ["users", "revoke", mei])
        assert result.exit_code == 0, result.output
        assert "revoked 1 token(s) and 1 web session(s) of mei" in result.output
        assert _row(started.row.id).revoke_reason == "revoked"
        unknown = CliRunner().invoke(cli, ["users", "revoke", "nobody"])
        assert unknown.exit_code == 2 and "user nobody does not exist" in unknown.output

    def test_the_cli_password_ends_sessions(self, mei: str) -> None:
        started = _start(mei)
        assert CliRunner().invoke(cli, ["users", "password", mei, "--password", "another secret"]).exit_code == 0
        assert _row(started.row.id).revoke_reason == "password_changed"

    def test_a_user_ends_only_their_own_live_sessions(self, mei: str) -> None:
        make_user(name="wu", roles=("warehouse",))
        mine, theirs = _start(mei), _start("wu")
        with session_scope() as session, pytest.raises(NotFound):
            end_own_web_session(session, user_name=mei, session_id=theirs.row.id, now=T0, policy=POLICY)
        with session_scope() as session:
            end_own_web_session(session, user_name=mei, session_id=mine.row.id, now=T0, policy=POLICY)
        with session_scope() as session, pytest.raises(NotFound):
            end_own_web_session(session, user_name=mei, session_id=mine.row.id, now=T0, policy=POLICY)
        assert (_row(mine.row.id).revoke_reason, _row(theirs.row.id).revoked_at) == ("ended_by_user", None)


class TestListLiveWebSessions:
    def test_lists_the_users_live_sessions_most_recently_used_first(self, mei: str) -> None:
        make_user(name="wu", roles=("warehouse",))
        old, recent, ended, gone_idle = (_start(mei, now=T0 + timedelta(minutes=m)) for m in (20, 30, 40, -70))
        _start("wu")
        with session_scope() as session:
            end_web_session(session, session_id=ended.row.id, actor=mei, reason=EndReason.SIGNED_OUT, now=T0)
            listed = list_live_web_sessions(session, user_name=mei, now=T0 + timedelta(minutes=45), policy=POLICY)
        assert [row.id for row in listed] == [recent.row.id, old.row.id]
        assert gone_idle.row.id not in [row.id for row in listed]


class TestTimedOutSessionsAreSwept:
    def test_the_sweep_ends_idle_and_expired_sessions_once_with_their_reason(self, mei: str) -> None:
        now = datetime.now(UTC)
        policy = session_policy()  # the sweeper's: from the settings (60 minutes idle, 12 hours lifetime)
        assert (policy.idle, policy.lifetime) == (timedelta(minutes=60), timedelta(hours=12))
        idle, expired, live = (
            _start(mei, now=now - timedelta(minutes=61)),
            _start(mei, now=now - timedelta(hours=13)),
            _start(mei, now=now),
        )
        with session_scope() as session:
            # Used a minute ago, so only its lifetime ends it.
            session.execute(
                update(WebSession)
                .where(WebSession.id == expired.row.id)
                .values(last_seen_at=now - timedelta(minutes=1))
            )
        assert sweep_once(now=now, forecast=False).web_sessions_ended == 2
        assert sweep_once(now=now, forecast=False).web_sessions_ended == 0
        assert [_row(s.row.id).revoke_reason for s in (idle, expired, live)] == ["idle", "expired", None]
        assert sorted((actor, data["reason"]) for actor, data in _ended_events()) == [
            ("system", "expired"),
            ("system", "idle"),
        ]

    def test_a_batch_ends_nothing_twice(self, mei: str) -> None:
        _start(mei)
        later = T0 + timedelta(hours=2)
        with session_scope() as session:
            assert end_timed_out_web_sessions(session, now=later, policy=POLICY) == 1
        with session_scope() as session:
            assert end_timed_out_web_sessions(session, now=later, policy=POLICY) == 0
