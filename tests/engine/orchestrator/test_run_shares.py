"""Sharing scheduled runs among live workers: one taker for a fresh run, and a late one is anyone's, last."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ecomflow.engine.orchestrator.run_shares import GRACE_SECONDS, Claim, claim, preferred_worker, take_order

pytestmark = pytest.mark.db_independent

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
LIVE = ["host:101:aaaa", "host:202:bbbb"]
THREE = [*LIVE, "host:303:cccc"]
RUNS = [uuid.UUID(int=n * 7919 + 12345) for n in range(200)]
LATE = timedelta(seconds=GRACE_SECONDS)


def _claims(run_id: uuid.UUID, waited: timedelta, live: list[str]) -> dict[str, Claim]:
    return {worker: claim(run_id, NOW - waited, worker_id=worker, live=live, now=NOW) for worker in live}


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_a_run_within_the_grace_has_exactly_one_taker_its_preferred_worker(live: list[str]) -> None:
    # Two workers racing for a run would both take it here: the server then refuses one of the two takes.
    for run_id in RUNS:
        for waited in (timedelta(0), LATE - timedelta(milliseconds=1)):
            preferred = preferred_worker(run_id, live)
            assert _claims(run_id, waited, live) == {w: Claim.OWN if w == preferred else Claim.LEAVE for w in live}


def test_the_shares_split_the_runs_between_the_workers() -> None:
    shares = [preferred_worker(run_id, LIVE) for run_id in RUNS]
    assert {worker: shares.count(worker) for worker in LIVE} == {LIVE[0]: 100, LIVE[1]: 100}


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_past_the_grace_every_other_worker_may_take_it_over(live: list[str]) -> None:
    # Its preferred worker is saturated, slow or dead: the others take it rather than leave it waiting.
    for run_id in RUNS[:20]:
        preferred = preferred_worker(run_id, live)
        assert _claims(run_id, LATE, live) == {w: Claim.OWN if w == preferred else Claim.OVERDUE for w in live}


def test_own_runs_are_taken_oldest_first_then_overdue_ones_youngest_first() -> None:
    # The overdue ones' own worker takes them oldest first: from the other end, the two meet only on the last one.
    polled = [("a", Claim.OVERDUE), ("b", Claim.OWN), ("c", Claim.LEAVE), ("d", Claim.OVERDUE), ("e", Claim.OWN)]
    assert take_order(polled) == [("b", Claim.OWN), ("e", Claim.OWN), ("d", Claim.OVERDUE), ("a", Claim.OVERDUE)]


def test_every_run_is_the_worker_s_when_alone_not_yet_announced_or_without_a_time() -> None:
    for run_id in RUNS[:20]:
        for waited in (timedelta(0), LATE * 3):
            assert _claims(run_id, waited, ["host:101:aaaa"]) == {"host:101:aaaa": Claim.OWN}
        # Its presence not written yet (just started, or the database unreachable): it takes any run.
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=LIVE, now=NOW) is Claim.OWN
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=[], now=NOW) is Claim.OWN
        assert claim(run_id, None, worker_id=LIVE[0], live=LIVE, now=NOW) is Claim.OWN
