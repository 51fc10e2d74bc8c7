"""Read-only sessions: they never wait for a writer, the database refuses their writes, and the
connection they used writes normally afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import make_engine, read_only, read_scope
from tests.factories import make_task, uncommitted_change_to

pytestmark = pytest.mark.usefixtures("clean_db")


def _read_assignee(task_id: str) -> str | None:
    with read_scope() as session:
        return session.scalar(select(HumanTask.assignee).where(HumanTask.id == task_id))


def test_a_read_does_not_wait_for_a_writer(database_url: str) -> None:
    task_id = make_task()
    with uncommitted_change_to(database_url, task_id), ThreadPoolExecutor(1) as pool:
        reading = pool.submit(_read_assignee, task_id)
        # A read that took the write lock first would wait here until the writer ends (or its 30 s busy timeout).
        assert reading.result(timeout=5) is None, "the reader saw a change that was never committed"


def test_the_database_refuses_a_write_in_a_read_scope() -> None:
    task_id = make_task()
    with pytest.raises(DBAPIError, match=r"read-only|readonly"), read_scope() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task_id).values(assignee="sneaky"))
    assert _read_assignee(task_id) is None


def test_the_connection_a_reader_used_writes_again(database_url: str) -> None:
    task_id = make_task()
    engine = make_engine(database_url)  # its own pool: used one at a time, it holds one connection
    try:
        with read_only(engine).connect() as reader:
            read_with = reader.connection.dbapi_connection
            assert reader.scalar(select(HumanTask.assignee).where(HumanTask.id == task_id)) is None
        with engine.begin() as writer:
            assert writer.connection.dbapi_connection is read_with
            writer.execute(update(HumanTask).where(HumanTask.id == task_id).values(assignee="writer"))
    finally:
        engine.dispose()
    assert _read_assignee(task_id) == "writer"
