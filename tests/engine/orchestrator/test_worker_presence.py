"""Worker presence: live while renewed, gone when withdrawn or expired, listed alike for every worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.orchestrator import worker_presence

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _live(at: datetime) -> list[str]:
    with session_scope() as session:
        return worker_presence.live_workers(session, now=at)


def test_announced_workers_are_live_in_one_order_until_their_time_passes(clean_db: str) -> None:
    with session_scope() as session:
        worker_presence.announce(session, worker_id="w-b", now=T0, seconds=30)
        worker_presence.announce(session, worker_id="w-a", now=T0 + timedelta(seconds=10), seconds=30)
    assert _live(T0 + timedelta(seconds=5)) == ["w-a", "w-b"]
    # w-b was last seen at T0: a worker killed then stops counting once its 30 s pass.
    assert _live(T0 + timedelta(seconds=30)) == ["w-a"]
    assert _live(T0 + timedelta(seconds=40)) == []


def test_announcing_again_renews_rather_than_adds(clean_db: str) -> None:
    for seconds_in in (0, 20):
        with session_scope() as session:
            worker_presence.announce(session, worker_id="w-a", now=T0 + timedelta(seconds=seconds_in), seconds=30)
    assert _live(T0 + timedelta(seconds=45)) == ["w-a"]


def test_a_withdrawn_worker_is_no_longer_live(clean_db: str) -> None:
    with session_scope() as session:
        worker_presence.announce(session, worker_id="w-a", now=T0, seconds=30)
        worker_presence.announce(session, worker_id="w-b", now=T0, seconds=30)
    with session_scope() as session:
        worker_presence.withdraw(session, worker_id="w-a")
    assert _live(T0) == ["w-b"]
