"""Signing in under the rate limit: 5 failures of a name (20 of an address) within 15 minutes lock it for 15 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, SignInFailure, WebSession
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import TooManyAttempts, Unauthorized
from ecomflow.engine.people.sign_in import SignedIn, sign_in
from ecomflow.engine.people.sign_in_limits import (
    SignInLimits,
    find_sign_in_lock,
    prune_sign_in_failures,
    record_sign_in_failure,
    sign_in_limits,
)
from ecomflow.engine.people.users import set_password
from tests.factories import make_user

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct-horse-42"
HOME = "10.0.0.1"
LIMITS = sign_in_limits()


def _sign_in(name: str, password: str, *, at: datetime, address: str = HOME, replacing: str | None = None) -> SignedIn:
    return sign_in(
        name=name, password=password, client_address=address, user_agent="pytest", now=at, replacing=replacing
    )


def _fail(name: str, times: int, *, start: datetime = T0, address: str = HOME) -> datetime:
    """Sign in with a wrong password `times` times, a second apart; return the moment of the last try."""
    at = start
    for attempt in range(times):
        at = start + timedelta(seconds=attempt)
        with pytest.raises((Unauthorized, TooManyAttempts)):
            _sign_in(name, "wrong-password", at=at, address=address)
    return at


def _events(type: str) -> list[AuditEvent]:
    with session_scope() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.type == type).order_by(AuditEvent.id)))


def _failures(scope: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(SignInFailure).where(SignInFailure.scope == scope))


@pytest.fixture
def wu(clean_db: str) -> str:
    make_user(name="wu", roles=("warehouse",))
    with session_scope() as session:
        set_password(session, name="wu", password=PASSWORD)
    return "wu"


class TestTheDefaults:
    def test_five_per_name_twenty_per_address_within_15_minutes_lock_for_15(self) -> None:
        assert (
            SignInLimits(
                window=timedelta(minutes=15),
                lock=timedelta(minutes=15),
                max_per_name=5,
                max_per_address=20,
            )
            == LIMITS
        )


class TestNameLock:
    def test_the_fifth_failure_locks_and_the_sixth_try_is_refused_even_with_the_right_password(self, wu: str) -> None:
        _fail(wu, 4)
        with pytest.raises(TooManyAttempts) as fifth:
            _sign_in(wu, "wrong-password", at=T0 + timedelta(seconds=4))
        assert (fifth.value.about["scope"], fifth.value.about["until"]) == (
            "name",
            T0 + timedelta(minutes=15, seconds=4),
        )
        with pytest.raises(TooManyAttempts) as sixth:
            _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=5))
        assert "locked until 2026-12-01T09:15:04+00:00" in sixth.value.detail
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(WebSession)) == 0

    def test_four_failures_do_not_lock(self, wu: str) -> None:
        _fail(wu, 4)
        assert _sign_in(wu, PASSWORD, at=T0 + timedelta(seconds=5)).principal.name == wu

    def test_the_lock_ends_after_15_minutes(self, wu: str) -> None:
        last = _fail(wu, 5)
        with pytest.raises(TooManyAttempts):
            _sign_in(wu, PASSWORD, at=last + timedelta(minutes=15) - timedelta(seconds=1))
        assert _sign_in(wu, PASSWORD, at=last + timedelta(minutes=15)).principal.name == wu

    def test_failures_spread_wider_than_the_window_do_not_lock(self, wu: str) -> None:
        for attempt in range(5):
            _fail(wu, 1, start=T0 + attempt * timedelta(minutes=4))  # 0, 4, 8, 12, 16 minutes: never 5 within 15
        assert _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=16, seconds=1)).principal.name == wu

    def test_a_success_clears_the_names_failures_but_not_the_addresss(self, wu: str) -> None:
        _fail(wu, 4)
        _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=1))
        assert (_failures("name"), _failures("address")) == (0, 4)
        _fail(wu, 4, start=T0 + timedelta(minutes=2))
        assert _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=3)).principal.name == wu

    def test_an_unknown_name_is_locked_the_same_way(self, wu: str) -> None:
        _fail("nobody", 4)
        with pytest.raises(TooManyAttempts) as locked:
            _sign_in("nobody", "wrong-password", at=T0 + timedelta(seconds=4))
        assert locked.value.about["scope"] == "name"
        assert _sign_in(wu, PASSWORD, at=T0 + timedelta(seconds=5)).principal.name == wu  # another name is not locked

    def test_every_failure_and_refusal_is_audited_without_the_password(self, wu: str) -> None:
        _fail(wu, 5)
        with pytest.raises(TooManyAttempts):
            _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=1))
        failed, refused = _events("user.sign_in_failed"), _events("user.sign_in_refused")
        assert len(failed) == 5 and len(refused) == 1
        assert failed[0].data == {"name": wu, "client_address": HOME, "locked": None, "locked_until": None}
        assert failed[-1].data["locked"] == refused[0].data["locked"] == "name"
        assert {event.actor for event in failed + refused} == {"visitor"}
        assert not [e for e in failed + refused if "wrong-password" in str(e.data) or PASSWORD in str(e.data)]

    def test_attempts_refused_by_a_lock_do_not_prolong_it(self, wu: str) -> None:
        last = _fail(wu, 5)
        for minute in range(1, 15):
            with pytest.raises(TooManyAttempts):
                _sign_in(wu, "wrong-password", at=last + timedelta(minutes=minute))
        assert _sign_in(wu, PASSWORD, at=last + timedelta(minutes=15)).principal.name == wu


class TestAddressLock:
    def test_twenty_failures_from_one_address_lock_it_for_every_name(self, wu: str) -> None:
        with session_scope() as session:
            for attempt in range(19):
                record_sign_in_failure(
                    session,
                    name=f"guess-{attempt}",
                    client_address="10.6.6.6",
                    now=T0 + timedelta(seconds=attempt),
                    limits=LIMITS,
                )
        with pytest.raises(TooManyAttempts) as twentieth:
            _sign_in("guess-19", "wrong-password", at=T0 + timedelta(seconds=19), address="10.6.6.6")
        assert twentieth.value.about["scope"] == "address"
        with pytest.raises(TooManyAttempts) as right_password:
            _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=1), address="10.6.6.6")
        assert right_password.value.about["scope"] == "address"
        assert _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=1), address="10.7.7.7").principal.name == wu
        assert (
            _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=15, seconds=19), address="10.6.6.6").principal.name == wu
        )

    def test_nineteen_failures_do_not_lock_the_address(self, wu: str) -> None:
        with session_scope() as session:
            for attempt in range(19):
                record_sign_in_failure(session, name=f"guess-{attempt}", client_address=HOME, now=T0, limits=LIMITS)
            assert find_sign_in_lock(session, name=wu, client_address=HOME, now=T0, limits=LIMITS) is None


class TestSessionsStartedBySignIn:
    def test_each_sign_in_starts_a_new_session_and_replaces_the_browsers_old_one(self, wu: str) -> None:
        first = _sign_in(wu, PASSWORD, at=T0)
        second = _sign_in(wu, PASSWORD, at=T0 + timedelta(minutes=1), replacing=first.session_id)
        assert first.secret != second.secret and first.session_id != second.session_id
        assert second.expires_at == T0 + timedelta(minutes=1, hours=12)
        with session_scope() as session:
            assert session.get(WebSession, first.session_id).revoke_reason == "replaced"
            assert session.get(WebSession, second.session_id).revoked_at is None


class TestPruning:
    def test_failures_older_than_window_and_lock_are_deleted(self, clean_db: str) -> None:
        with session_scope() as session:
            for minutes_ago in (31, 30, 29):
                record_sign_in_failure(
                    session, name="x", client_address=None, now=T0 - timedelta(minutes=minutes_ago), limits=LIMITS
                )
        with session_scope() as session:
            assert prune_sign_in_failures(session, now=T0, limits=LIMITS) == 2
        assert _failures("name") == 1
