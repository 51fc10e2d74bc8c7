"""As a run suspends, the worker delivers at once the resumes refused because it had not suspended yet."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from ecomflow.api import delivery
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import dispatcher, outbox
from ecomflow.engine.instances.lifecycle import record_flow_run
from ecomflow.engine.orchestrator import run_leases, runs
from tests.factories import make_instance


@pytest.fixture
def resumes_sent(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Stand in for Prefect's resume: record each message sent, refusing those in REFUSED."""
    sent: list[int] = []

    def deliver(message: OutboxMessage, *, now) -> None:
        sent.append(message.id)
        if message.id in REFUSED:
            raise dispatcher.NotDeliverableYet("not suspended on this key")

    REFUSED.clear()
    monkeypatch.setitem(dispatcher.DELIVERERS, outbox.RESUME_RUN, deliver)
    return sent


# Resumes the stand-in refuses (the run is suspended on another key).
REFUSED: set[int] = set()


def _resume(instance_id: str, *, refused_once: bool = True) -> int:
    """A resume the API tried while the run was still running: refused, backing off."""
    with session_scope() as session:
        message = outbox.enqueue_resume(session, instance_id=instance_id, pause_key_prefix="task-")
        session.flush()
        if refused_once:
            outbox.mark_retry(session, message_id=message.id, attempts=1, now=utcnow(), error="NotDeliverableYet")
        return message.id


def _delivered(message_id: int) -> bool:
    with session_scope() as session:
        return session.get(OutboxMessage, message_id).delivered_at is not None


def test_a_resume_refused_before_the_suspension_is_delivered_without_its_backoff(resumes_sent: list[int]) -> None:
    instance_id, other = make_instance(), make_instance()
    waited, elsewhere = _resume(instance_id), _resume(other)
    assert dispatcher.deliver_resumes_that_waited(instance_id) == 1
    assert resumes_sent == [waited] and _delivered(waited)
    assert not _delivered(elsewhere)  # another instance's resume keeps its backoff
    assert dispatcher.deliver_resumes_that_waited(instance_id) == 0 and resumes_sent == [waited]


def test_a_resume_refused_after_the_suspension_is_tried_once_and_left_to_the_dispatcher(
    resumes_sent: list[int],
) -> None:
    instance_id = make_instance()
    message_id = _resume(instance_id)
    REFUSED.add(message_id)  # a resume for another lane's wait
    assert dispatcher.deliver_resumes_that_waited(instance_id) == 0
    assert resumes_sent == [message_id] and not _delivered(message_id)


def test_a_resume_another_deliverer_holds_is_waited_for_and_taken_once_it_lets_go(resumes_sent: list[int]) -> None:
    instance_id = make_instance()
    message_id = _resume(instance_id, refused_once=False)
    with session_scope() as session:
        assert outbox.lease(session, message_id=message_id, now=utcnow(), seconds=30) is not None  # the API's attempt
    result: list[int] = []
    suspension = threading.Thread(target=lambda: result.append(dispatcher.deliver_resumes_that_waited(instance_id)))
    suspension.start()
    time.sleep(dispatcher.HELD_RESUME_WAIT_SECONDS / 5)
    assert resumes_sent == []  # held: not sent twice at once
    with session_scope() as session:  # the API's attempt was refused: the run had not suspended yet
        outbox.mark_retry(session, message_id=message_id, attempts=1, now=utcnow(), error="NotDeliverableYet")
    suspension.join(timeout=5)
    assert result == [1] and resumes_sent == [message_id] and _delivered(message_id)


def test_a_resume_held_past_the_wait_is_left_to_its_holder(resumes_sent: list[int]) -> None:
    instance_id = make_instance()
    message_id = _resume(instance_id, refused_once=False)
    with session_scope() as session:
        outbox.lease(session, message_id=message_id, now=utcnow(), seconds=30)
    started = time.monotonic()
    assert dispatcher.deliver_resumes_that_waited(instance_id) == 0
    assert time.monotonic() - started < dispatcher.HELD_RESUME_WAIT_SECONDS + 1  # bounded: a pool thread waits here
    assert resumes_sent == []


def _run_of(instance_id: str) -> str:
    flow_run_id = str(uuid.uuid4())
    with session_scope() as session:
        record_flow_run(session, instance_id=instance_id, flow_run_id=flow_run_id)
    return flow_run_id


def test_a_resume_for_a_run_its_worker_is_executing_is_not_sent_to_prefect(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(
        runs, "resume_run", lambda **kwargs: sent.append(kwargs["flow_run_id"]) or runs.ResumeOutcome.RESUMED
    )
    instance_id = make_instance()
    flow_run_id = _run_of(instance_id)
    message_id = _resume(instance_id, refused_once=False)
    with session_scope() as session:
        run_leases.hold(session, flow_run_id=flow_run_id, worker_id="w-1", now=utcnow(), seconds=30)
    assert dispatcher.attempt_delivery(message_id) is dispatcher.Delivery.NOT_YET
    assert sent == []  # Prefect would refuse it: the run is not suspended while it executes
    with session_scope() as session:  # the run suspended: its worker dropped the lease, then delivers
        run_leases.release(session, flow_run_id=flow_run_id, worker_id="w-1")
    assert dispatcher.deliver_resumes_that_waited(instance_id) == 1
    assert sent == [flow_run_id] and _delivered(message_id)


def test_the_api_distrusts_prefects_health_only_when_a_delivery_failed(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    distrusted: list[int] = []
    outcomes = iter([dispatcher.Delivery.NOT_YET, dispatcher.Delivery.HELD, dispatcher.Delivery.FAILED])
    monkeypatch.setattr(delivery, "api_was_recently_healthy", lambda: True)
    monkeypatch.setattr(delivery, "distrust_health", lambda: distrusted.append(1))
    monkeypatch.setattr(delivery, "attempt_delivery", lambda message_id: next(outcomes))
    delivery.deliver_now([1, 2])
    assert distrusted == []  # a resume refused for now, one held elsewhere: Prefect answered, or was not asked
    delivery.deliver_now([3])
    assert distrusted == [1]
