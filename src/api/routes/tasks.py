"""The task inbox: list, read, claim, release, assign, complete, comment."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.delivery import deliver_now
from api.deps import CurrentUser, DefinitionsDep
from api.presenters import present_task, present_task_detail
from api.schemas import AssignIn, CommentIn, CommentOut, CompleteIn, TaskDetailOut, TaskOut, TaskPage
from engine import idempotency, tasks
from engine.db import session_scope
from engine.outbox import new_message_ids
from engine.errors import Conflict, ValidationFailed
from engine.forms import FieldProblem
from engine.inbox import MAX_LIMIT, InboxFilter, list_inbox

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("", response_model=TaskPage)
def inbox(
    user: CurrentUser,
    state: str | None = None,
    mine: bool = False,
    role: str | None = None,
    process: str | None = None,
    overdue: bool = False,
    sort: str = "due",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> TaskPage:
    """Return the caller's inbox: their tasks and their roles' queues."""
    filters = InboxFilter(state=state, mine=mine, role=role, process=process, overdue=overdue, sort=sort, cursor=cursor, limit=limit)
    with session_scope() as session:
        rows, next_cursor = list_inbox(session, principal=user, filters=filters)
        return TaskPage(items=[present_task(t) for t in rows], next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskDetailOut)
def get(task_id: str, user: CurrentUser, definitions: DefinitionsDep) -> TaskDetailOut:
    """Return a task with its form, context, comments and history."""
    with session_scope() as session:
        task = tasks.get_visible_task(session, task_id, principal=user)
        return present_task_detail(session, task, definitions)


@router.post("/{task_id}/claim", response_model=TaskOut)
def claim(task_id: str, user: CurrentUser) -> TaskOut:
    """Take the task; when several claim at once exactly one wins."""
    with session_scope() as session:
        return present_task(tasks.claim_task(session, task_id=task_id, principal=user))


@router.post("/{task_id}/release", response_model=TaskOut)
def release(task_id: str, user: CurrentUser) -> TaskOut:
    """Give the task back to its role's queue."""
    with session_scope() as session:
        return present_task(tasks.release_task(session, task_id=task_id, principal=user))


@router.post("/{task_id}/assign", response_model=TaskOut)
def assign(task_id: str, body: AssignIn, user: CurrentUser) -> TaskOut:
    """Give the task to a named user (managers)."""
    with session_scope() as session:
        return present_task(tasks.assign_task(session, task_id=task_id, principal=user, user=body.user, reason=body.reason))


def _parse_if_match(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if not value.isdigit():
        rule = "If-Match must be the task's version number"
        raise ValidationFailed(rule, problems=[FieldProblem("If-Match", "format", rule)])
    return int(value)


def _replay(stored: idempotency.IdempotentResponse, path: str) -> JSONResponse:
    """Return the stored first answer, unless the key was first used for another request."""
    if stored.request_path != path:
        rule = f"Idempotency-Key was already used for {stored.request_path}; use a new key for each request"
        raise ValidationFailed(rule, problems=[FieldProblem("Idempotency-Key", "unique", rule)])
    return JSONResponse(stored.body, status_code=stored.status_code)


@router.post("/{task_id}/complete", response_model=TaskOut)
def complete(
    task_id: str,
    body: CompleteIn,
    request: Request,
    user: CurrentUser,
    definitions: DefinitionsDep,
    background: BackgroundTasks,
    idempotency_key: Annotated[str | None, Header(max_length=idempotency.MAX_KEY_CHARS)] = None,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Submit the task's form; the output, its audit event and the flow's resume commit together."""
    expected_version = _parse_if_match(if_match)
    try:
        with session_scope() as session:
            if idempotency_key and (stored := idempotency.find_response(session, user=user.name, key=idempotency_key)):
                return _replay(stored, request.url.path)
            task = tasks.complete_task(
                session, task_id=task_id, principal=user, data=body.data, definitions=definitions,
                expected_version=expected_version,
            )
            answer = jsonable_encoder(present_task(task))
            if idempotency_key:
                idempotency.save_response(session, user=user.name, key=idempotency_key, path=request.url.path, status_code=200, body=answer)
            background.add_task(deliver_now, new_message_ids(session))
    except Conflict:
        # A concurrent request with the same key may have won: then its answer is ours.
        if idempotency_key:
            with session_scope() as session:
                if stored := idempotency.find_response(session, user=user.name, key=idempotency_key):
                    return _replay(stored, request.url.path)
        raise
    return JSONResponse(answer, status_code=200)


@router.post("/{task_id}/comments", response_model=CommentOut, status_code=201)
def comment(task_id: str, body: CommentIn, user: CurrentUser) -> CommentOut:
    """Add a comment to the task."""
    with session_scope() as session:
        added = tasks.add_comment(session, task_id=task_id, principal=user, text=body.text)
        session.flush()
        return CommentOut(author=added.author, text=added.text, created_at=added.created_at)
