"""Sharing scheduled runs among live workers: one taker at any moment, and a late run passes to the next worker."""

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
GRACE = timedelta(seconds=GRACE_SECONDS)
HANDED_OVER = timedelta(seconds=GRACE_SECONDS + HANDOVER_SECONDS)
# Waits from 0 to 3 times the grace and handover, in tenths of a second.
WAITS = [timedelta(seconds=tenths / 10) for tenths in range(int(30 * (GRACE_SECONDS + HANDOVER_SECONDS)))]


def _claims(run_id: uuid.UUID, waited: timedelta, live: list[str]) -> dict[str, Claim]:
    return {worker: claim(run_id, NOW - waited, worker_id=worker, live=live, now=NOW) for worker in live}


def _takers(run_id: uuid.UUID, waited: timedelta, live: list[str]) -> list[str]:
    return [worker for worker, share in _claims(run_id, waited, live).items() if share is not Claim.LEAVE]


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_a_run_within_the_grace_has_exactly_one_taker_its_preferred_worker(live: list[str]) -> None:
    # Two workers racing for a run would both take it here: the server then refuses one of the two takes.
    for run_id in RUNS:
        for waited in (timedelta(0), GRACE - timedelta(milliseconds=1)):
            assert _takers(run_id, waited, live) == [preferred_worker(run_id, live)]
            assert _claims(run_id, waited, live)[preferred_worker(run_id, live)] is Claim.OWN


def test_the_shares_split_the_runs_between_the_workers() -> None:
    shares = [preferred_worker(run_id, LIVE) for run_id in RUNS]
    assert {worker: shares.count(worker) for worker in LIVE} == {LIVE[0]: 100, LIVE[1]: 100}


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_a_waiting_run_has_one_taker_at_every_moment_but_the_handover(live: list[str]) -> None:
    for run_id in RUNS[:20]:
        for waited in WAITS:
            in_handover = GRACE <= waited < HANDED_OVER
            assert len(_takers(run_id, waited, live)) == (0 if in_handover else 1), (run_id, waited)


@pytest.mark.parametrize("live", [LIVE, THREE], ids=["two", "three"])
def test_past_the_grace_and_handover_the_next_worker_takes_it_over(live: list[str]) -> None:
    # Its preferred worker is saturated, slow or dead: the next one takes it rather than leave it waiting.
    for run_id in RUNS[:20]:
        preferred = live.index(preferred_worker(run_id, live))
        after = live[(preferred + 1) % len(live)]
        for waited in (HANDED_OVER, HANDED_OVER * 10):
            assert _claims(run_id, waited, live) == {w: Claim.OVERDUE if w == after else Claim.LEAVE for w in live}


def test_every_run_is_the_worker_s_when_alone_not_yet_announced_or_without_a_time() -> None:
    for run_id in RUNS[:20]:
        for waited in WAITS:
            assert _claims(run_id, waited, ["host:101:aaaa"]) == {"host:101:aaaa": Claim.OWN}
        # Its presence not written yet (just started, or the database unreachable): it takes any run.
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=LIVE, now=NOW) is Claim.OWN
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=[], now=NOW) is Claim.OWN
        assert claim(run_id, None, worker_id=LIVE[0], live=LIVE, now=NOW) is Claim.OWN
