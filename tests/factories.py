"""Factory functions for test data, with keyword-only overrides."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.orm import Session

from ecomflow.engine.config import get_settings
from ecomflow.engine.db.models import AuditEvent, HumanTask, ProcessInstance
from ecomflow.engine.db.sessions import make_engine, session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions, parse_definitions
from ecomflow.engine.definitions.versions import current_version
from ecomflow.engine.files.incoming import IncomingFile, SizeLimit
from ecomflow.engine.files.storage import get_store
from ecomflow.engine.files.uploads import accept_upload
from ecomflow.engine.instances.lifecycle import start_instance
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import add_user
from ecomflow.engine.tasks.step_tasks import open_task
from ecomflow.sample_data import Attach, return_params
from tests.images import picture


def make_user(*, name: str | None = None, roles: tuple[str, ...] = ("customer_service",)) -> tuple[Principal, str]:
    """Create a user; return it as a principal with its token."""
    name = name or f"user-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        add_user_result = add_user(session, name=name, roles=roles, known_roles=get_definitions().roles)
    return Principal(name=name, roles=frozenset(roles)), add_user_result[1]


def make_attachment(*, uploader: str, data: bytes | None = None, name: str = "photo.jpg") -> str:
    """Upload a file (a white-background 800×800 JPEG unless given) as the user, through the engine; return its id."""
    store = get_store()
    incoming = IncomingFile(spool_dir=store.spool_dir, filename=name, limit=SizeLimit(get_settings().max_upload_bytes))
    incoming.write(picture() if data is None else data)
    principal = Principal(name=uploader, roles=frozenset())
    attachment = accept_upload(
        incoming.finish(), principal=principal, store=store, max_image_pixels=get_settings().max_image_pixels
    )
    return attachment.id


def attach_as(uploader: str) -> Attach:
    """Return sample data's upload function, uploading as the user."""
    return lambda name, data: make_attachment(uploader=uploader, data=data, name=name)


def starter(name: str = "tester") -> Principal:
    """Return a starter of any process: every process's `starters` include the managers."""
    return Principal(name=name, roles=frozenset({"operations"}))


def make_instance(
    *, process: str = "returns_exchange", params: dict[str, Any] | None = None, actor: str = "tester"
) -> str:
    """Start an instance directly in the engine (no flow run), started by `actor`; return its id."""
    with session_scope() as session:
        instance = start_instance(
            session,
            definitions=get_definitions(),
            process_key=process,
            business_key=f"BK-{uuid.uuid4().hex[:8]}",
            params=return_params() if params is None else params,
            principal=starter(actor),
        )
        return instance.id


def edited_definitions(edit: Callable[[dict[str, Any]], None]) -> Definitions:
    """Return the shipped flows.yaml with `edit` applied to a copy of its mapping, validated."""
    raw = copy.deepcopy(dict(get_definitions().source))
    edit(raw)
    return parse_definitions(raw)


def pin_to_edited_version(instance_id: str, edit: Callable[[dict[str, Any]], None]) -> int:
    """Store a version of the instance's process as `edit` changes flows.yaml, and pin the instance to it."""
    definitions = edited_definitions(edit)
    with session_scope() as session:
        instance = session.get(ProcessInstance, instance_id)
        instance.definition_version = current_version(session, definitions, instance.process_key)
        return instance.definition_version


def step_of(raw: dict[str, Any], process: str, step: str) -> dict[str, Any]:
    """Return a step's mapping in a raw flows.yaml mapping, to edit."""
    return next(s for s in raw["processes"][process]["steps"] if s["key"] == step)


def make_task(
    *,
    step: str = "inspect",
    process: str = "returns_exchange",
    instance_id: str | None = None,
    round: int = 1,
    excluded: tuple[str, ...] = (),
    now: datetime | None = None,
    priority: int | None = None,
) -> str:
    """Open a task as a flow would (as if at `now`); return its id."""
    instance_id = instance_id or make_instance(process=process, params=None if process == "returns_exchange" else {})
    with session_scope() as session:
        spec = get_definitions().process(process).step(step)
        task = open_task(session, instance_id=instance_id, step=spec, round=round, excluded_users=excluded, now=now)
        if priority is not None:
            # Flows set no priority yet; tests set it as an escalation would.
            session.execute(update(HumanTask).where(HumanTask.id == task.id).values(priority=priority))
        return task.id


def add_task_row(
    *,
    instance_id: str,
    role: str = "warehouse",
    process: str = "returns_exchange",
    created_at: datetime,
    state: str = "open",
    assignee: str | None = None,
    events: tuple[tuple[str, datetime], ...] = (),
    completed_at: datetime | None = None,
    completed_by: str | None = None,
    due_at: datetime | None = None,
    round: int = 1,
    priority: int = 0,
    claimed_at: datetime | None = None,
) -> str:
    """Insert a task row with a hand-written history of (audit event type, at); return its id."""
    taken = [at for type, at in events if type != "task.released"]
    with session_scope() as session:
        task = HumanTask(
            instance_id=instance_id,
            process_key=process,
            step_key=f"step-{uuid.uuid4().hex[:8]}",
            kind="human",
            round=round,
            role=role,
            state=state,
            assignee=assignee,
            due_at=due_at,
            priority=priority,
            created_at=created_at,
            claimed_at=claimed_at or (taken[-1] if taken else None),
            completed_at=completed_at,
            completed_by=completed_by,
        )
        session.add(task)
        session.flush()
        for type, at in events:
            session.add(AuditEvent(type=type, actor="tester", instance_id=instance_id, task_id=task.id, at=at))
        return task.id


@contextmanager
def uncommitted_change_to(database_url: str, task_id: str) -> Iterator[Connection]:
    """Hold a transaction of another connection that changed the task and has not committed.

    On SQLite it holds the write lock.
    """
    engine = make_engine(database_url)  # set up as the app's: on SQLite its transactions begin IMMEDIATE
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(update(HumanTask).where(HumanTask.id == task_id).values(assignee="someone-writing"))
            try:
                yield connection
            finally:
                transaction.rollback()
    finally:
        engine.dispose()


def change_then_fail(change: Callable[[Session], object], error: str) -> None:
    """Make `change` in a session_scope, then raise RuntimeError(error) before it commits, so it rolls back."""
    with session_scope() as session:
        change(session)
        raise RuntimeError(error)
