"""Sharing scheduled runs among live workers: one taker at any moment, and every live worker's turn comes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ecomflow.engine.orchestrator.run_shares import GRACE_SECONDS, HANDOVER_SECONDS, Claim, claim, preferred_worker

pytestmark = pytest.mark.db_independent

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
LIVE = ["host:101:aaaa", "host:202:bbbb"]
THREE = [*LIVE, "host:303:cccc"]
RUNS = [uuid.UUID(int=n * 7919 + 12345) for n in range(200)]
# Waits from 0 to 6 graces, in tenths of a grace.
WAITS = [timedelta(seconds=GRACE_SECONDS * tenths / 10) for tenths in range(60)]


def _claims(run_id: uuid.UUID, waited: timedelta, live: list[str]) -> dict[str, Claim]:
    return {worker: claim(run_id, NOW - waited, worker_id=worker, live=live, now=NOW) for worker in live}


def _takers(run_id: uuid.UUID, waited: timedelta, live: list[str]) -> list[str]:
    return [worker for worker, share in _claims(run_id, waited, live).items() if share is not Claim.LEAVE]


def test_a_just_scheduled_run_has_exactly_one_taker_its_preferred_worker() -> None:
    # Two workers racing for a run would both be takers here: the server then refuses one of the two takes.
    for run_id in RUNS:
        assert _claims(run_id, timedelta(0), LIVE)[preferred_worker(run_id, LIVE)] is Claim.OWN
        assert _takers(run_id, timedelta(0), LIVE) == [preferred_worker(run_id, LIVE)]


def test_the_shares_split_the_runs_between_the_workers() -> None:
    shares = [preferred_worker(run_id, LIVE) for run_id in RUNS]
    assert {worker: shares.count(worker) for worker in LIVE} == {LIVE[0]: 100, LIVE[1]: 100}


def _in_handover(waited: timedelta) -> bool:
    seconds = waited.total_seconds()
    return seconds >= GRACE_SECONDS and seconds % GRACE_SECONDS < HANDOVER_SECONDS


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_a_waiting_run_has_one_taker_at_every_moment_but_the_handovers(live: list[str]) -> None:
    for run_id in RUNS[:20]:
        for waited in WAITS:
            assert len(_takers(run_id, waited, live)) == (0 if _in_handover(waited) else 1), (run_id, waited)


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_past_the_grace_the_run_passes_to_every_other_worker_in_turn(live: list[str]) -> None:
    # Its preferred worker is saturated, slow or dead: within as many graces as workers, each other one may take it.
    for run_id in RUNS[:20]:
        preferred = preferred_worker(run_id, live)
        overdue = {
            worker
            for waited in WAITS
            if waited >= timedelta(seconds=GRACE_SECONDS)
            for worker, share in _claims(run_id, waited, live).items()
            if share is Claim.OVERDUE
        }
        assert overdue == set(live) - {preferred}, (run_id, overdue)


def test_every_run_is_the_worker_s_when_alone_not_yet_announced_or_without_a_time() -> None:
    for run_id in RUNS[:20]:
        for waited in WAITS:
            assert _claims(run_id, waited, ["host:101:aaaa"]) == {"host:101:aaaa": Claim.OWN}
        # Its presence not written yet (just started, or the database unreachable): it takes any run.
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=LIVE, now=NOW) is Claim.OWN
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=[], now=NOW) is Claim.OWN
        assert claim(run_id, None, worker_id=LIVE[0], live=LIVE, now=NOW) is Claim.OWN
