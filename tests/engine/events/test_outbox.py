"""The outbox: compare-and-set leases, exponential retry, delivery bookkeeping."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import outbox
from tests.factories import change_then_fail


def _enqueue(kind: str = outbox.RESUME_RUN, *, at: datetime) -> int:
    with session_scope() as session:
        message = outbox.enqueue(session, kind=kind, task_id="t-1", payload={"n": 1})
        message.available_at = at
        session.flush()
        return message.id


def _message(message_id: int) -> OutboxMessage:
    with session_scope() as session:
        return session.get(OutboxMessage, message_id)


def _lease(message_id: int, *, now: datetime, seconds: float = 30) -> OutboxMessage | None:
    with session_scope() as session:
        return outbox.lease(session, message_id=message_id, now=now, seconds=seconds)


def _pending(now: datetime) -> list[int]:
    with session_scope() as session:
        return outbox.pending_ids(session, now=now)


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(microsecond=0)


class TestEnqueue:
    def test_message_is_pending_after_commit(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        stored = _message(message_id)
        assert (stored.kind, stored.task_id, stored.payload, stored.attempts) == (outbox.RESUME_RUN, "t-1", {"n": 1}, 0)
        assert _pending(now) == [message_id]

    def test_message_is_lost_with_a_rolled_back_change(self, clean_db: str, now: datetime) -> None:
        with pytest.raises(RuntimeError):
            change_then_fail(
                lambda session: outbox.enqueue(session, kind=outbox.START_RUN, instance_id="i-1"), "the change failed"
            )
        with session_scope() as session:
            assert outbox.undelivered_count(session) == 0


class TestLease:
    def test_first_lease_takes_the_message(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        leased = _lease(message_id, now=now, seconds=30)
        assert leased is not None
        assert leased.attempts == 1
        assert leased.locked_until == now + timedelta(seconds=30)

    def test_second_lease_of_a_leased_message_gets_none(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        assert _lease(message_id, now=now) is not None
        assert _lease(message_id, now=now + timedelta(seconds=29)) is None
        assert _message(message_id).attempts == 1
        assert _pending(now + timedelta(seconds=29)) == []

    def test_an_expired_lease_can_be_taken_again(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        _lease(message_id, now=now, seconds=30)
        again = _lease(message_id, now=now + timedelta(seconds=31), seconds=30)
        assert again is not None and again.attempts == 2
        assert _pending(now + timedelta(seconds=31)) == []

    def test_a_delivered_message_cannot_be_leased(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        _lease(message_id, now=now)
        with session_scope() as session:
            outbox.mark_delivered(session, message_id=message_id, now=now)
        assert _lease(message_id, now=now + timedelta(hours=1)) is None


class TestMarkRetry:
    def test_backoff_doubles_with_each_attempt(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        delays = []
        for attempts in range(1, 6):
            with session_scope() as session:
                outbox.mark_retry(session, message_id=message_id, attempts=attempts, now=now, error="refused")
            delays.append((_message(message_id).available_at - now).total_seconds())
        assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]

    def test_backoff_is_capped(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        with session_scope() as session:
            outbox.mark_retry(session, message_id=message_id, attempts=20, now=now, error="refused")
        assert _message(message_id).available_at == now + outbox.MAX_BACKOFF

    def test_a_kind_may_have_a_larger_cap(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(outbox.WEBHOOK, at=now)
        with session_scope() as session:
            outbox.mark_retry(
                session, message_id=message_id, attempts=20, now=now, error="refused", max_backoff=timedelta(minutes=10)
            )
        assert _message(message_id).available_at == now + timedelta(minutes=10)

    def test_retry_releases_the_lease_and_waits_for_its_time(self, clean_db: str, now: datetime) -> None:
        message_id = _enqueue(at=now)
        leased = _lease(message_id, now=now)
        with session_scope() as session:
            outbox.mark_retry(session, message_id=message_id, attempts=leased.attempts + 2, now=now, error="x" * 5000)
        stored = _message(message_id)
        assert stored.locked_until is None
        assert stored.last_error == "x" * 2000
        assert stored.available_at == now + timedelta(seconds=2)
        assert _pending(now + timedelta(seconds=1)) == []
        assert _pending(now + timedelta(seconds=2)) == [message_id]


class TestMarkDelivered:
    def test_delivered_message_leaves_the_pending_list(self, clean_db: str, now: datetime) -> None:
        kept, delivered = _enqueue(at=now), _enqueue(at=now)
        assert _pending(now) == [kept, delivered]
        _lease(delivered, now=now)
        with session_scope() as session:
            outbox.mark_delivered(session, message_id=delivered, now=now)
        assert _pending(now + timedelta(hours=1)) == [kept]
        stored = _message(delivered)
        assert (stored.delivered_at, stored.locked_until, stored.last_error) == (now, None, None)
        with session_scope() as session:
            assert outbox.undelivered_count(session) == 1


class TestMarkFailed:
    def test_a_failed_message_is_never_pending_nor_leased_again(self, clean_db: str, now: datetime) -> None:
        kept, failed = _enqueue(outbox.WEBHOOK, at=now), _enqueue(outbox.WEBHOOK, at=now)
        _lease(failed, now=now)
        with session_scope() as session:
            outbox.mark_failed(session, message_id=failed, now=now, error="y" * 5000)
        stored = _message(failed)
        assert (stored.failed_at, stored.locked_until, stored.last_error, stored.delivered_at) == (
            now,
            None,
            "y" * 2000,
            None,
        )
        assert _pending(now + timedelta(days=1)) == [kept]
        assert _lease(failed, now=now + timedelta(days=1)) is None
        with session_scope() as session:
            assert outbox.undelivered_count(session) == 1


class TestPendingIds:
    def test_future_and_leased_messages_are_not_pending(self, clean_db: str, now: datetime) -> None:
        due = _enqueue(at=now - timedelta(seconds=1))
        _enqueue(at=now + timedelta(minutes=1))
        leased = _enqueue(at=now)
        _lease(leased, now=now)
        assert _pending(now) == [due]

    def test_limit_keeps_the_oldest(self, clean_db: str, now: datetime) -> None:
        ids = [_enqueue(at=now) for _ in range(5)]
        with session_scope() as session:
            assert outbox.pending_ids(session, now=now, limit=3) == ids[:3]
