"""Fixtures for notification channels: vendor receivers, an SMTP server, and channel configuration per test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.events import dispatcher, outbox
from ecomflow.engine.events.routing_file import get_routing
from tests.engine.events.receivers import (
    DINGTALK_TOKEN,
    FEISHU_HOOK,
    WECOM_KEY,
    Mailbox,
    Receiver,
    check_dingtalk,
    check_feishu,
    check_wecom,
    start_http_receiver,
    start_smtp_server,
)

PUBLIC_URL = "https://ecomflow.example.com"
DINGTALK_SECRET = "SECb1e3a0c5d7f94c2e8a6b4d2f0e1c3a5b7d9f1e3c5a7b9d1f3e5a7c9b1d3f5e7a"
FEISHU_SECRET = "feishu-sign-secret-for-tests"
SMTP_USER, SMTP_PASSWORD = "ecomflow@example.com", "smtp-password-for-tests"
ALL_EVENTS = [
    "task.created",
    "task.assigned",
    "task.due_soon",
    "task.reminded",
    "task.overdue",
    "task.escalated",
    "instance.completed",
    "instance.failed",
    "report.daily",
    "daily_digest",
]


class Vendors:
    """Start vendor receivers for a test; each returns the receiver and the channel entry that points at it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[Any] = []
        self.smtp: list[Any] = []

    def dingtalk(self, name: str = "team-dingtalk", *, secret: str = DINGTALK_SECRET) -> tuple[Receiver, dict]:
        receiver = Receiver(secret=DINGTALK_SECRET, check=check_dingtalk)
        self.servers.append(start_http_receiver(receiver, f"/robot/send?access_token={DINGTALK_TOKEN}"))
        return receiver, {"name": name, "type": "dingtalk", "webhook": receiver.url, "secret": secret}

    def wecom(self, name: str = "team-wecom", *, key: str = WECOM_KEY) -> tuple[Receiver, dict]:
        receiver = Receiver(secret=WECOM_KEY, check=check_wecom)
        self.servers.append(start_http_receiver(receiver, "/cgi-bin/webhook/send"))
        return receiver, {"name": name, "type": "wecom", "webhook": f"{receiver.url}?key={key}"}

    def feishu(self, name: str = "team-feishu", *, secret: str = FEISHU_SECRET) -> tuple[Receiver, dict]:
        receiver = Receiver(secret=FEISHU_SECRET, check=check_feishu)
        self.servers.append(start_http_receiver(receiver, FEISHU_HOOK))
        return receiver, {"name": name, "type": "feishu", "webhook": receiver.url, "secret": secret}

    def email(
        self, name: str = "email", *, password: str = SMTP_PASSWORD, to: tuple[str, ...] = ()
    ) -> tuple[Mailbox, dict]:
        mailbox, controller = start_smtp_server(self.tmp_path, user=SMTP_USER, password=SMTP_PASSWORD)
        self.smtp.append(controller)
        return mailbox, {
            "name": name,
            "type": "email",
            "host": mailbox.host,
            "port": mailbox.port,
            "username": SMTP_USER,
            "password": password,
            "sender": "ecomflow@example.com",
            "to": list(to),
            "ca_file": str(mailbox.ca_file),
        }

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for controller in self.smtp:
            controller.stop()


@pytest.fixture
def vendors(tmp_path: Path) -> Iterator[Vendors]:
    started = Vendors(tmp_path)
    yield started
    started.close()


def routes_to(*channels: str, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Return one route of a notifications file."""
    return {"events": events or ALL_EVENTS, "channels": list(channels), **extra}


@pytest.fixture
def configure_channels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Configure channels and a notifications file for this test: configure_channels(entry, ..., routes=[...])."""

    def configure(
        *channels: dict[str, Any],
        routes: list[dict[str, Any]] | None = None,
        max_attempts: int = 3,
        digest: dict[str, Any] | None = None,
        language: str = "zh",
    ) -> None:
        notifications = {
            "version": 1,
            "language": language,
            "daily_digest": digest or {"at": "09:00", "until": "12:00", "working_days_only": True},
            "routes": routes if routes is not None else [routes_to(*(c["name"] for c in channels))],
        }
        path = tmp_path / "notifications.yaml"
        path.write_text(yaml.safe_dump(notifications, allow_unicode=True), encoding="utf-8")
        monkeypatch.setenv("ECOMFLOW_CHANNELS", json.dumps(list(channels)))
        monkeypatch.setenv("ECOMFLOW_CHANNEL_MAX_ATTEMPTS", str(max_attempts))
        monkeypatch.setenv("ECOMFLOW_NOTIFICATIONS_PATH", str(path))
        monkeypatch.setenv("ECOMFLOW_PUBLIC_URL", PUBLIC_URL)
        get_settings.cache_clear()
        get_routing.cache_clear()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()
    get_routing.cache_clear()


def channel_messages() -> list[OutboxMessage]:
    """Return every queued channel message, oldest first."""
    with session_scope() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == outbox.CHANNEL).order_by(OutboxMessage.id)
        return list(session.scalars(query))


def deliver_channels(*, now: datetime) -> int:
    """Run the dispatcher over the channel messages due at `now` (the Prefect messages beside them are not ours)."""
    with session_scope() as session:
        due = outbox.pending_ids(session, now=now, limit=1000)
        ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.id.in_(due), OutboxMessage.kind == outbox.CHANNEL)
                .order_by(OutboxMessage.id)
            )
        )
    return sum(dispatcher.deliver_one(message_id, now=now) for message_id in ids)
