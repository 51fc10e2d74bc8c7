"""Races over real HTTP: many callers claiming one task, and the hand-over actions racing on one claimed task."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent, HumanTask
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.people.principals import Principal
from tests.api.conftest import Caller, assert_error
from tests.engine.tasks.test_races import (
    HandOver,
    HandOverCast,
    check_one_serial_outcome,
    make_claimed_task,
    read_race_record,
)
from tests.factories import make_task

CLAIMERS_PER_TASK = 20
CONTESTED_TASKS = 5
HANDOVER_ROUNDS = 12
# The error names a Conflict (409) may carry: the refusals a lost race or a serial order gives.
CONFLICT_ERRORS = {"AlreadyClaimed", "VersionMismatch", "IllegalTransition"}


def _post_together(requests: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Send each request from its own thread (and its own connection), all released at once."""
    start = threading.Barrier(len(requests), timeout=120)

    def send(request: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return request()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def _claim_row(task_id: str) -> tuple[str, str | None, int, list[str]]:
    """Return the task's state, assignee and version, and the actors of its task.claimed events."""
    with session_scope() as session:
        task = session.get(HumanTask, task_id)
        claimers = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.task_id == task_id, AuditEvent.type == "task.claimed")
        )
        return task.state, task.assignee, task.version, list(claimers)


class TestConcurrentClaimsOfOneTask:
    def test_one_200_and_every_other_caller_409_naming_the_holder(self, login: Callable[..., Caller]) -> None:
        workers = [login("warehouse") for _ in range(CLAIMERS_PER_TASK)]
        for _ in range(CONTESTED_TASKS):
            task_id = make_task(step="inspect")
            responses = _post_together([partial(w.post, f"/tasks/{task_id}/claim") for w in workers])

            won = [r for r in responses if r.status_code == 200]
            assert len(won) == 1, [(r.status_code, r.text) for r in responses]
            holder = won[0].json()["assignee"]
            winner_index = responses.index(won[0])
            assert holder == workers[winner_index].name, "the 200 names someone other than its caller"
            for response in responses:
                if response is not won[0]:
                    body = assert_error(response, 409, "AlreadyClaimed")
                    assert holder in body["detail"], body
            assert _claim_row(task_id) == ("claimed", holder, 2, [holder])


def _send(call: HandOver, caller: Caller, task_id: str) -> httpx.Response:
    """Make the hand-over call over HTTP as its actor."""
    if call.kind == "complete":
        return caller.post(f"/tasks/{task_id}/complete", json={"data": call.data}, headers={"If-Match": "2"})
    if call.kind == "release":
        return caller.post(f"/tasks/{task_id}/release")
    return caller.post(f"/tasks/{task_id}/{call.kind}", json={"user": call.target, "reason": "race"})


def _principal(caller: Caller) -> Principal:
    return Principal(name=caller.name, roles=frozenset(caller.roles))


def _shown(response: httpx.Response) -> tuple[str, str | None, int]:
    body = response.json()
    return body["state"], body["assignee"], body["version"]


class TestHandOversRacingOverHttp:
    def test_every_race_ends_in_one_serial_outcome_and_no_500(self, login: Callable[..., Caller]) -> None:
        people = {"holder": login("warehouse"), "manager": login("operations")}
        people |= {"assignee": login("warehouse"), "delegate": login("warehouse")}
        callers = {caller.name: caller for caller in people.values()}
        cast = HandOverCast(**{part: _principal(caller) for part, caller in people.items()})
        calls = cast.calls()
        for _ in range(HANDOVER_ROUNDS):
            task_id = make_claimed_task(cast.holder)
            responses = _post_together([partial(_send, call, callers[call.actor.name], task_id) for call in calls])
            by_call = dict(zip((call.name for call in calls), responses, strict=True))

            assert {name: r.text for name, r in by_call.items() if r.status_code not in (200, 409)} == {}
            refusals = {name: r.json()["error"] for name, r in by_call.items() if r.status_code == 409}
            assert set(refusals.values()) <= CONFLICT_ERRORS, refusals
            succeeded = {name for name, r in by_call.items() if r.status_code == 200}
            results = check_one_serial_outcome(calls, succeeded, read_race_record(task_id), holder=cast.holder.name)
            # Each 200 shows the task as its own change left it.
            shown = {name: _shown(by_call[name]) for name in succeeded}
            assert shown == {name: (view.state, view.assignee, view.version) for name, view in results.items()}
