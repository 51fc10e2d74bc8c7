"""Flow-run leases: counted takes, renewals by the holder only, and one recoverer per abandoned run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.orchestrator import run_leases

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
RUN = "6f1c5a52-0000-4000-8000-000000000001"


def _lease():
    with session_scope() as session:
        lease = run_leases.find(session, RUN)
        if lease is not None:
            session.expunge(lease)
        return lease


class TestHold:
    def test_each_take_without_a_release_counts(self, clean_db: str) -> None:
        with session_scope() as session:
            assert run_leases.hold(session, flow_run_id=RUN, worker_id="w1", now=T0, seconds=30) == 1
        with session_scope() as session:
            assert run_leases.hold(session, flow_run_id=RUN, worker_id="w2", now=T0, seconds=30) == 2
        lease = _lease()
        assert (lease.worker_id, lease.takes, lease.leased_until) == ("w2", 2, T0 + timedelta(seconds=30))

    def test_release_by_the_holder_resets_the_count(self, clean_db: str) -> None:
        with session_scope() as session:
            run_leases.hold(session, flow_run_id=RUN, worker_id="w1", now=T0, seconds=30)
        with session_scope() as session:
            run_leases.release(session, flow_run_id=RUN, worker_id="someone-else")
        assert _lease() is not None
        with session_scope() as session:
            run_leases.release(session, flow_run_id=RUN, worker_id="w1")
        assert _lease() is None
        with session_scope() as session:
            assert run_leases.hold(session, flow_run_id=RUN, worker_id="w1", now=T0, seconds=30) == 1


class TestRenew:
    def test_only_the_holders_leases_are_extended(self, clean_db: str) -> None:
        with session_scope() as session:
            run_leases.hold(session, flow_run_id=RUN, worker_id="w1", now=T0, seconds=30)
        later = T0 + timedelta(seconds=20)
        with session_scope() as session:
            run_leases.renew(session, worker_id="w2", flow_run_ids=[RUN], now=later, seconds=30)
        assert _lease().leased_until == T0 + timedelta(seconds=30)
        with session_scope() as session:
            run_leases.renew(session, worker_id="w1", flow_run_ids=[RUN], now=later, seconds=30)
        assert _lease().leased_until == later + timedelta(seconds=30)


class TestTakeOver:
    def test_two_scanners_one_recovers(self, clean_db: str) -> None:
        with session_scope() as session:
            run_leases.hold(session, flow_run_id=RUN, worker_id="dead", now=T0, seconds=30)
        expired = _lease()
        barrier = threading.Barrier(2)
        wins: list[bool] = []

        def scan(worker_id: str) -> None:
            barrier.wait()
            with session_scope() as session:
                wins.append(
                    run_leases.take_over(
                        session,
                        lease=expired,
                        flow_run_id=RUN,
                        worker_id=worker_id,
                        now=T0 + timedelta(minutes=5),
                        seconds=30,
                    )
                )

        threads = [threading.Thread(target=scan, args=(f"w{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(wins) == [False, True]
        assert _lease().takes == 1  # a recovery is not a take

    def test_a_run_without_any_lease_is_recovered_once(self, clean_db: str) -> None:
        with session_scope() as session:
            assert run_leases.take_over(session, lease=None, flow_run_id=RUN, worker_id="w1", now=T0, seconds=30)
        with session_scope() as session:
            assert not run_leases.take_over(session, lease=None, flow_run_id=RUN, worker_id="w2", now=T0, seconds=30)
        assert (_lease().worker_id, _lease().takes) == ("w1", 0)
