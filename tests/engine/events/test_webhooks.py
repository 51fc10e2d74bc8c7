"""Webhooks: queued with the audit event's transaction, signed, delivered by the dispatcher, retried, given up."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine.clock import utcnow
from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import AuditEvent, HumanTask, OutboxMessage, ProcessInstance
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import dispatcher, outbox
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.events.delivery_log import DeliveryStatus, list_deliveries
from ecomflow.engine.events.notifications import WEBHOOK_EVENT_BY_AUDIT_TYPE
from ecomflow.engine.events.webhooks import MAX_BACKOFF, sign, verify_signature
from ecomflow.engine.people.principals import SYSTEM_ACTOR
from ecomflow.engine.tasks.actions import assign_task
from tests.factories import change_then_fail, make_instance, make_task, make_user

SECRET = "s3cret-for-tests-only"
TASK_DATA_KEYS = {"actor", "task_id", "instance_id", "process", "step", "role", "assignee", "due_at"}


@dataclass
class Arrival:
    """One request as the receiver saw it."""

    headers: httpx.Headers
    body: bytes
    signature_valid: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP receiver: verifies, processes each delivery id once, answers the next scripted status (else 200)."""

    url: str
    secret: str = SECRET
    statuses: list[int] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def handle(self, headers: httpx.Headers, body: bytes) -> int:
        """Record the request, process it unless its delivery id was processed before, return the status to answer."""
        signature_valid = verify_signature(
            self.secret, headers.get("X-Ecomflow-Timestamp", ""), body, headers.get("X-Ecomflow-Signature", "")
        )
        self.arrivals.append(Arrival(headers=headers, body=body, signature_valid=signature_valid))
        if not signature_valid:
            return 401
        self.processed.setdefault(headers["X-Ecomflow-Delivery"], json.loads(body))
        # Processing and then failing to answer 2xx is the at-least-once case that de-duplication is for.
        return self.statuses.pop(0) if self.statuses else 200


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.handle(httpx.Headers(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    """Start real HTTP receivers on 127.0.0.1 (random ports): start_receiver(statuses=[500, 500])."""
    servers: list[ThreadingHTTPServer] = []

    def start(*, statuses: tuple[int, ...] = ()) -> WebhookReceiver:
        receiver = WebhookReceiver(url="", statuses=list(statuses))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
        receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/ecomflow"
        threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """Return a URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def endpoint(name: str, url: str, *, events: tuple[str, ...] = ("*",), secret: str = SECRET) -> dict[str, Any]:
    """Return one entry of ECOMFLOW_WEBHOOKS."""
    return {"name": name, "url": url, "secret": secret, "events": list(events)}


@pytest.fixture
def configure_webhooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ECOMFLOW_WEBHOOKS (and the attempt limit) for this test; settings are read again each time."""

    def configure(*endpoints: dict[str, Any], max_attempts: int = 12) -> None:
        monkeypatch.setenv("ECOMFLOW_WEBHOOKS", json.dumps(list(endpoints)))
        monkeypatch.setenv("ECOMFLOW_WEBHOOK_MAX_ATTEMPTS", str(max_attempts))
        get_settings.cache_clear()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


def webhook_messages() -> list[OutboxMessage]:
    """Return every queued webhook message, oldest first."""
    with session_scope() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == outbox.WEBHOOK).order_by(OutboxMessage.id)
            )
        )


def deliver_webhooks(*, now: datetime) -> int:
    """Run the dispatcher over the webhook messages due at `now`; the Prefect messages beside them are not ours here."""
    with session_scope() as session:
        due = outbox.pending_ids(session, now=now, limit=1000)
        ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.id.in_(due), OutboxMessage.kind == outbox.WEBHOOK)
                .order_by(OutboxMessage.id)
            )
        )
    return sum(dispatcher.deliver_one(message_id, now=now) for message_id in ids)


def record_on_task(type: str, *, task_id: str, data: dict[str, Any] | None = None) -> None:
    """Commit an audit event about the task, as the engine would."""
    with session_scope() as session:
        instance_id = session.get(HumanTask, task_id).instance_id
        record_event(session, type=type, actor=SYSTEM_ACTOR, instance_id=instance_id, task_id=task_id, data=data)


class TestVerifySignature:
    def test_accepts_a_signature_made_with_the_secret(self) -> None:
        body = b'{"event":"task.created"}'
        assert verify_signature(
            SECRET, "1700000000", body, sign(SECRET, timestamp=1700000000, body=body), now=1700000010
        )

    @pytest.mark.parametrize(
        ("secret", "timestamp", "body", "now"),
        [
            ("another-secret", "1700000000", b'{"event":"task.created"}', 1700000010),
            (SECRET, "1700000000", b'{"event":"task.overdue"}', 1700000010),
            (SECRET, "1700000001", b'{"event":"task.created"}', 1700000010),
            (SECRET, "1700000000", b'{"event":"task.created"}', 1700000000 + 301),
            (SECRET, "yesterday", b'{"event":"task.created"}', 1700000010),
        ],
        ids=["wrong-secret", "altered-body", "altered-timestamp", "stale", "malformed-timestamp"],
    )
    def test_refuses(self, secret: str, timestamp: str, body: bytes, now: float) -> None:
        signature = sign(SECRET, timestamp=1700000000, body=b'{"event":"task.created"}')
        assert not verify_signature(secret, timestamp, body, signature, 300, now=now)

    def test_refuses_a_signature_without_its_scheme(self) -> None:
        body = b"{}"
        bare = sign(SECRET, timestamp=1700000000, body=body).removeprefix("sha256=")
        assert not verify_signature(SECRET, 1700000000, body, bare, now=1700000000)


class TestQueueing:
    def test_nothing_is_queued_without_webhooks(self, clean_db: str) -> None:
        make_task()
        assert webhook_messages() == []

    def test_a_rolled_back_event_queues_nothing(self, clean_db: str, configure_webhooks: Callable[..., None]) -> None:
        task_id = make_task()
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))

        def record_and_look(session: Session) -> None:
            record_event(session, type="task.created", actor=SYSTEM_ACTOR, task_id=task_id)
            queued = [m for m in session.info[outbox.NEW_MESSAGES] if m.kind == outbox.WEBHOOK]
            assert len(queued) == 1  # it was in the transaction...

        with pytest.raises(RuntimeError):
            change_then_fail(record_and_look, "the change failed")
        assert webhook_messages() == []  # ...and left with it

    @pytest.mark.parametrize(("audit_type", "event"), sorted(WEBHOOK_EVENT_BY_AUDIT_TYPE.items()))
    def test_each_mapped_audit_type_queues_its_event(
        self, clean_db: str, configure_webhooks: Callable[..., None], audit_type: str, event: str
    ) -> None:
        task_id = make_task()
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        record_on_task(audit_type, task_id=task_id)
        assert [m.payload["event"] for m in webhook_messages()] == [event]

    def test_other_audit_types_queue_nothing(self, clean_db: str, configure_webhooks: Callable[..., None]) -> None:
        task_id = make_task()
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        record_on_task("task.claimed", task_id=task_id)
        record_on_task("task.commented", task_id=task_id)
        assert webhook_messages() == []

    def test_an_endpoint_gets_only_the_events_it_subscribed_to(
        self, clean_db: str, configure_webhooks: Callable[..., None]
    ) -> None:
        configure_webhooks(
            endpoint("everything", "http://127.0.0.1:9/a"),
            endpoint("overdue-only", "http://127.0.0.1:9/b", events=("task.overdue",)),
        )
        task_id = make_task()
        record_on_task("task.overdue", task_id=task_id)
        sent = [(m.payload["endpoint"], m.payload["event"]) for m in webhook_messages()]
        assert sent == [
            ("everything", "task.created"),
            ("everything", "task.overdue"),
            ("overdue-only", "task.overdue"),
        ]

    def test_the_payload_names_the_endpoint_and_keeps_secret_and_customer_data_out(
        self, clean_db: str, configure_webhooks: Callable[..., None]
    ) -> None:
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        task_id = make_task()
        [message] = webhook_messages()
        assert set(message.payload) == {"endpoint", "delivery_id", "event", "occurred_at", "data"}
        assert message.payload["endpoint"] == "im"
        assert set(message.payload["data"]) == TASK_DATA_KEYS
        with session_scope() as session:
            instance = session.get(ProcessInstance, session.get(HumanTask, task_id).instance_id)
            customer_values = [instance.business_key, instance.params["order_id"], instance.params["reason"]]
            audit_data = json.dumps([e.data for e in session.scalars(select(AuditEvent))], ensure_ascii=False)
        sent = json.dumps(message.payload, ensure_ascii=False)
        assert not [value for value in customer_values if value in sent]
        assert SECRET not in sent and SECRET not in audit_data

    def test_an_escalation_says_to_whom_and_drops_free_text(
        self, clean_db: str, configure_webhooks: Callable[..., None]
    ) -> None:
        task_id = make_task()
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        record_on_task(
            "task.escalated", task_id=task_id, data={"to": "operations", "release": False, "note": "客户张三很生气"}
        )
        [message] = webhook_messages()
        assert set(message.payload["data"]) == TASK_DATA_KEYS | {"to", "release"}
        assert (message.payload["data"]["to"], message.payload["data"]["release"]) == ("operations", False)

    def test_a_daily_report_carries_its_totals_only(
        self, clean_db: str, configure_webhooks: Callable[..., None]
    ) -> None:
        instance_id = make_instance(process="daily_report", params={})
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        summary = {
            "report_date": "2025-03-03",
            "done": 7,
            "open": 2,
            "overdue": 1,
            "by_person": {"wu": 7},
            "gmv": "100.00",
            "signups": 1,
            "signup_events": ["双11预售"],
        }
        with session_scope() as session:
            record_event(session, type="report.daily", actor=SYSTEM_ACTOR, instance_id=instance_id, data=summary)
        [message] = webhook_messages()
        assert message.payload["data"] == {
            "actor": SYSTEM_ACTOR,
            "instance_id": instance_id,
            "process": "daily_report",
            "report_date": "2025-03-03",
            "done": 7,
            "open": 2,
            "overdue": 1,
            "gmv": "100.00",
            "signups": 1,
        }

    def test_an_assignment_names_the_new_assignee(self, clean_db: str, configure_webhooks: Callable[..., None]) -> None:
        task_id = make_task()
        worker, _ = make_user(name="wu", roles=("warehouse",))
        manager, _ = make_user(name="boss", roles=("operations",))
        configure_webhooks(endpoint("im", "http://127.0.0.1:9/never-called"))
        with session_scope() as session:
            assign_task(session, task_id=task_id, principal=manager, user=worker.name)
        [message] = webhook_messages()
        assert message.payload["event"] == "task.assigned"
        assert (message.payload["data"]["assignee"], message.payload["data"]["actor"]) == ("wu", "boss")


class TestDelivery:
    def test_a_committed_event_arrives_signed_with_its_headers(
        self, clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
    ) -> None:
        receiver = start_receiver()
        configure_webhooks(endpoint("im", receiver.url))
        task_id = make_task()
        assert deliver_webhooks(now=utcnow()) == 1
        [arrival] = receiver.arrivals
        [message] = webhook_messages()
        assert arrival.signature_valid
        assert arrival.headers["Content-Type"] == "application/json"
        assert arrival.headers["X-Ecomflow-Event"] == "task.created"
        assert arrival.headers["X-Ecomflow-Delivery"] == message.payload["delivery_id"] == arrival.json["delivery_id"]
        assert arrival.headers["X-Ecomflow-Timestamp"].isdigit()
        assert arrival.headers["X-Ecomflow-Signature"].startswith("sha256=")
        with session_scope() as session:
            task = session.get(HumanTask, task_id)
            expected = {
                "actor": SYSTEM_ACTOR,
                "task_id": task.id,
                "instance_id": task.instance_id,
                "process": "returns_exchange",
                "step": "inspect",
                "role": "warehouse",
                "assignee": None,
                "due_at": task.due_at.isoformat(),
            }
        assert arrival.json == {
            "delivery_id": message.payload["delivery_id"],
            "event": "task.created",
            "occurred_at": message.payload["occurred_at"],
            "data": expected,
        }
        assert (message.delivered_at is not None, message.attempts, message.failed_at) == (True, 1, None)

    def test_failures_are_retried_with_the_same_delivery_id_until_accepted(
        self, clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
    ) -> None:
        receiver = start_receiver(statuses=(500, 500))
        configure_webhooks(endpoint("im", receiver.url))
        make_task()
        start = utcnow()
        assert deliver_webhooks(now=start) == 0
        assert deliver_webhooks(now=start) == 0  # backing off: not due yet
        assert len(receiver.arrivals) == 1
        assert deliver_webhooks(now=start + timedelta(minutes=1)) == 0
        assert deliver_webhooks(now=start + timedelta(minutes=2)) == 1
        assert len(receiver.arrivals) == 3
        assert {a.headers["X-Ecomflow-Delivery"] for a in receiver.arrivals} == set(receiver.processed)
        assert len(receiver.processed) == 1
        [message] = webhook_messages()
        assert (message.attempts, message.delivered_at, message.last_error) == (3, start + timedelta(minutes=2), None)

    def test_backoff_between_attempts_grows_to_ten_minutes(
        self, clean_db: str, configure_webhooks: Callable[..., None]
    ) -> None:
        configure_webhooks(endpoint("dead", dead_url()), max_attempts=30)
        make_task()
        now, waits = utcnow(), []
        for _ in range(14):
            deliver_webhooks(now=now)
            [message] = webhook_messages()
            waits.append(message.available_at - now)
            now = message.available_at
        assert waits[:3] == [timedelta(seconds=0.5), timedelta(seconds=1), timedelta(seconds=2)]
        assert waits[-1] == MAX_BACKOFF == timedelta(minutes=10)

    def test_a_dead_receiver_is_given_up_after_the_last_attempt(
        self, clean_db: str, configure_webhooks: Callable[..., None], caplog: pytest.LogCaptureFixture
    ) -> None:
        configure_webhooks(endpoint("dead", dead_url()), max_attempts=3)
        make_task()
        start = utcnow()
        with caplog.at_level(logging.DEBUG, logger="ecomflow.dispatcher"):
            for hour in range(3):
                assert deliver_webhooks(now=start + timedelta(hours=hour)) == 0
        [message] = webhook_messages()
        assert (message.attempts, message.failed_at, message.delivered_at) == (3, start + timedelta(hours=2), None)
        assert "ConnectError" in message.last_error and "given up after 3 attempts" in message.last_error
        with session_scope() as session:
            assert message.id not in outbox.pending_ids(session, now=start + timedelta(days=30))
            assert outbox.undelivered_count(session) == 1  # the instance's start_run, not the given-up webhook
        assert dispatcher.deliver_one(message.id, now=start + timedelta(days=30)) is False
        assert webhook_messages()[0].attempts == 3
        assert f"outbox message {message.id} (webhook) abandoned" in caplog.text
        assert SECRET not in caplog.text and json.dumps(message.payload["data"]) not in caplog.text

    def test_a_message_whose_endpoint_was_removed_fails_saying_so(
        self, clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
    ) -> None:
        receiver = start_receiver()
        configure_webhooks(endpoint("old", receiver.url), endpoint("new", receiver.url, events=("task.overdue",)))
        make_task()
        configure_webhooks(endpoint("new", receiver.url, events=("task.overdue",)))
        now = utcnow()
        assert deliver_webhooks(now=now) == 0
        [message] = webhook_messages()
        assert (message.attempts, message.failed_at) == (1, now)
        assert message.last_error == "webhook endpoint 'old' is no longer configured"
        assert receiver.arrivals == []
        with session_scope() as session:
            [logged] = list_deliveries(session)
        assert (logged.endpoint, logged.url, logged.status) == ("old", None, DeliveryStatus.FAILED)

    def test_an_endpoint_subscribed_to_overdue_only_gets_nothing_for_a_new_task(
        self, clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
    ) -> None:
        everything, overdue_only = start_receiver(), start_receiver()
        configure_webhooks(
            endpoint("everything", everything.url), endpoint("overdue-only", overdue_only.url, events=("task.overdue",))
        )
        task_id = make_task()
        assert deliver_webhooks(now=utcnow()) == 1
        assert [a.headers["X-Ecomflow-Event"] for a in everything.arrivals] == ["task.created"]
        assert overdue_only.arrivals == []
        record_on_task("task.overdue", task_id=task_id)
        assert deliver_webhooks(now=utcnow()) == 2
        assert [a.headers["X-Ecomflow-Event"] for a in overdue_only.arrivals] == ["task.overdue"]
        assert all(a.signature_valid for a in everything.arrivals + overdue_only.arrivals)


class TestTwoDispatchers:
    def test_each_message_is_sent_once_when_two_dispatchers_race(
        self, clean_db: str, configure_webhooks: Callable[..., None], start_receiver: Callable[..., WebhookReceiver]
    ) -> None:
        receiver = start_receiver()
        configure_webhooks(endpoint("im", receiver.url, events=("task.created",)))
        for _ in range(30):
            make_task()
        barrier = threading.Barrier(2)

        def dispatch() -> None:
            barrier.wait()
            for _ in range(5):  # several passes each, so both keep meeting the same pending messages
                deliver_webhooks(now=utcnow())

        threads = [threading.Thread(target=dispatch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = [arrival.headers["X-Ecomflow-Delivery"] for arrival in receiver.arrivals]
        assert len(sent) == 30 and len(set(sent)) == 30  # one POST per message: the lease let one dispatcher send it
        assert all(message.delivered_at is not None for message in webhook_messages())
