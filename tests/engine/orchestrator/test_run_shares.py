"""Sharing scheduled runs among live workers: each run has one preferred taker, and none waits past the grace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ecomflow.engine.orchestrator.run_shares import GRACE_SECONDS, Claim, claim, preferred_worker

pytestmark = pytest.mark.db_independent

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
LIVE = ["host:101:aaaa", "host:202:bbbb"]
RUNS = [uuid.UUID(int=n * 7919 + 12345) for n in range(200)]


def _claims(run_id: uuid.UUID, scheduled_at: datetime | None, live: list[str]) -> dict[str, Claim]:
    return {worker: claim(run_id, scheduled_at, worker_id=worker, live=live, now=NOW) for worker in live}


def _takers(run_id: uuid.UUID, scheduled_at: datetime | None, live: list[str]) -> list[str]:
    return [worker for worker, share in _claims(run_id, scheduled_at, live).items() if share is not Claim.LEAVE]


def test_a_just_scheduled_run_has_exactly_one_taker_among_live_workers() -> None:
    # Two workers racing for a run would both be takers here: the server then refuses one of the two takes.
    for run_id in RUNS:
        assert _takers(run_id, NOW, LIVE) == [preferred_worker(run_id, LIVE)]


def test_the_shares_split_the_runs_between_the_workers() -> None:
    shares = [preferred_worker(run_id, LIVE) for run_id in RUNS]
    assert {worker: shares.count(worker) for worker in LIVE} == {LIVE[0]: 100, LIVE[1]: 100}


def test_a_run_past_the_grace_is_taken_by_any_worker() -> None:
    # Its preferred worker is busy, slow or dead: the others take it rather than leave it waiting.
    late = NOW - timedelta(seconds=GRACE_SECONDS)
    for run_id in RUNS[:20]:
        preferred = preferred_worker(run_id, LIVE)
        assert _claims(run_id, late, LIVE) == {w: Claim.OWN if w == preferred else Claim.OVERDUE for w in LIVE}
        assert _takers(run_id, late + timedelta(milliseconds=1), LIVE) == [preferred_worker(run_id, LIVE)]


def test_every_share_is_the_only_worker_s_when_alone_or_not_yet_announced() -> None:
    for run_id in RUNS[:20]:
        assert _takers(run_id, NOW, ["host:101:aaaa"]) == ["host:101:aaaa"]
        # Its presence not written yet (just started, or the database unreachable): it takes any run.
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=LIVE, now=NOW) is Claim.OWN
        assert claim(run_id, NOW, worker_id="host:303:cccc", live=[], now=NOW) is Claim.OWN


def test_a_run_without_a_scheduled_time_is_anyone_s() -> None:
    assert _takers(RUNS[0], None, LIVE) == LIVE
