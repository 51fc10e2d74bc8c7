"""The task inbox: list, read, claim, release, assign, delegate, complete, comment, and bulk actions."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecomflow.api.delivery import deliver_now
from ecomflow.api.deps import BearerToken, CurrentUser, authenticated_read
from ecomflow.api.errors import error_responses, status_of
from ecomflow.api.presenters import present_task, present_task_detail
from ecomflow.api.responses import ModelResponse
from ecomflow.api.schemas import (
    AssignIn,
    BulkIn,
    BulkItemOut,
    BulkOut,
    CommentIn,
    CommentOut,
    CompleteIn,
    DelegateIn,
    FieldProblemOut,
    TaskDetailOut,
    TaskOut,
    TaskPage,
)
from ecomflow.engine.db import idempotency
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Conflict, EcomflowError, ValidationFailed
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.tasks import actions
from ecomflow.engine.tasks.bulk import BulkOutcome, BulkRequest, run_bulk
from ecomflow.engine.tasks.inbox import MAX_LIMIT, SORTS, InboxFilter, list_inbox

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=error_responses(401, 413, 422))


@router.get("", response_model=TaskPage)
def inbox(
    token: BearerToken,
    state: str | None = None,
    mine: bool = False,
    role: str | None = None,
    process: str | None = None,
    overdue: bool = False,
    at_risk: Annotated[
        bool | None, Query(description="true: only tasks forecast to miss their due time; false: the others")
    ] = None,
    sort: Annotated[
        str, Query(description=f"one of {', '.join(SORTS)}; at_risk puts at-risk tasks first, then by due")
    ] = "due",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> ModelResponse:
    """Return the caller's inbox: their tasks and their roles' queues."""
    filters = InboxFilter(
        state=state,
        mine=mine,
        role=role,
        process=process,
        overdue=overdue,
        at_risk=at_risk,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    # Authenticated in the page's own read transaction: the most requested page pays for one connection, not two.
    with authenticated_read(token) as (session, user):
        rows, next_cursor = list_inbox(session, principal=user, filters=filters)
        return ModelResponse(TaskPage(items=[present_task(t) for t in rows], next_cursor=next_cursor))


@router.post("/bulk", response_model=BulkOut, responses=error_responses(403))
def bulk(
    body: BulkIn,
    request: Request,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=idempotency.MAX_KEY_CHARS)] = None,
) -> JSONResponse:
    """Claim, assign or release many tasks (managers); each task succeeds or fails on its own."""
    path = request.url.path
    with session_scope() as session:
        if replayed := _stored_answer(session, user=user.name, key=idempotency_key, path=path):
            return replayed
    bulk_request = BulkRequest(action=body.action, task_ids=body.task_ids, user=body.user, reason=body.reason)
    answer = {"results": [_present_outcome(o) for o in run_bulk(request=bulk_request, principal=user)]}
    try:
        with session_scope() as session:
            _remember(session, user=user.name, key=idempotency_key, path=path, answer=answer)
    except IntegrityError:
        if replayed := _answer_of_concurrent_request(user=user.name, key=idempotency_key, path=path):
            return replayed
        raise
    return JSONResponse(answer, status_code=200)


def _present_outcome(outcome: BulkOutcome) -> dict[str, Any]:
    """Return one bulk result with only the keys that apply to it."""
    if outcome.error is None:
        item = BulkItemOut(
            task_id=outcome.task_id,
            ok=True,
            status=200,
            unchanged=outcome.unchanged,
            task=present_task(outcome.task),
        )
    elif isinstance(outcome.error, EcomflowError):
        problems = outcome.error.problems if isinstance(outcome.error, ValidationFailed) else []
        fields = [FieldProblemOut(field=p.field, rule=p.rule, message=p.message) for p in problems]
        item = BulkItemOut(
            task_id=outcome.task_id,
            ok=False,
            status=status_of(outcome.error),
            error=type(outcome.error).__name__,
            detail=outcome.error.detail,
            fields=fields or None,
        )
    else:
        item = BulkItemOut(
            task_id=outcome.task_id,
            ok=False,
            status=500,
            error="InternalError",
            detail="an unexpected error occurred; it has been logged",
        )
    body = jsonable_encoder(item)
    # Keys that do not apply are left out; a task inside keeps its nulls.
    return {key: value for key, value in body.items() if value is not None}


@router.get("/{task_id}", response_model=TaskDetailOut, responses=error_responses(404))
def get(task_id: str, user: CurrentUser) -> ModelResponse:
    """Return a task with its form, context, comments and history."""
    with read_scope() as session:
        task = actions.get_visible_task(session, task_id, principal=user)
        return ModelResponse(present_task_detail(session, task))


@router.post("/{task_id}/claim", response_model=TaskOut, responses=error_responses(403, 404, 409))
def claim(task_id: str, user: CurrentUser) -> ModelResponse:
    """Take the task; when several claim at once exactly one wins."""
    with session_scope() as session:
        return ModelResponse(present_task(actions.claim_task(session, task_id=task_id, principal=user)))


@router.post("/{task_id}/release", response_model=TaskOut, responses=error_responses(403, 404, 409))
def release(task_id: str, user: CurrentUser) -> ModelResponse:
    """Give the task back to its role's queue."""
    with session_scope() as session:
        return ModelResponse(present_task(actions.release_task(session, task_id=task_id, principal=user)))


@router.post("/{task_id}/assign", response_model=TaskOut, responses=error_responses(403, 404, 409))
def assign(task_id: str, body: AssignIn, user: CurrentUser) -> ModelResponse:
    """Give the task to a named user (managers)."""
    with session_scope() as session:
        return ModelResponse(
            present_task(
                actions.assign_task(session, task_id=task_id, principal=user, user=body.user, reason=body.reason)
            )
        )


@router.post("/{task_id}/delegate", response_model=TaskOut, responses=error_responses(403, 404, 409))
def delegate(task_id: str, body: DelegateIn, user: CurrentUser) -> ModelResponse:
    """Hand a claimed task to a colleague with its role (its holder or a manager), saying why."""
    with session_scope() as session:
        return ModelResponse(
            present_task(
                actions.delegate_task(session, task_id=task_id, principal=user, user=body.user, reason=body.reason)
            )
        )


_VERSION = re.compile(r"[0-9]{1,18}")


def _parse_if_match(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().strip('"').removeprefix("W/").strip('"')
    # ASCII digits, bounded: str.isdigit() passes "²" and 5,000 digits, on which int() raised (a 500).
    if not _VERSION.fullmatch(value):
        rule = "If-Match must be the task's version number"
        raise ValidationFailed(rule, problems=[FieldProblem("If-Match", "format", rule)])
    return int(value)


def _stored_answer(session: Session, *, user: str, key: str | None, path: str) -> JSONResponse | None:
    """Return the first answer to the user's earlier request with this Idempotency-Key, if there was one."""
    stored = idempotency.find_response(session, user=user, key=key) if key else None
    if stored is None:
        return None
    if stored.request_path != path:
        rule = f"Idempotency-Key was already used for {stored.request_path}; use a new key for each request"
        raise ValidationFailed(rule, problems=[FieldProblem("Idempotency-Key", "unique", rule)])
    return JSONResponse(stored.body, status_code=stored.status_code)


def _answer_of_concurrent_request(*, user: str, key: str | None, path: str) -> JSONResponse | None:
    """Return the answer a concurrent request with the same key stored first, if it did."""
    with session_scope() as session:
        return _stored_answer(session, user=user, key=key, path=path)


def _remember(session: Session, *, user: str, key: str | None, path: str, answer: dict[str, Any]) -> None:
    """Store the answer under the Idempotency-Key, if one was sent, in the caller's transaction."""
    if key:
        idempotency.save_response(session, user=user, key=key, path=path, status_code=200, body=answer)


@router.post("/{task_id}/complete", response_model=TaskOut, responses=error_responses(403, 404, 409))
def complete(
    task_id: str,
    body: CompleteIn,
    request: Request,
    user: CurrentUser,
    background: BackgroundTasks,
    idempotency_key: Annotated[str | None, Header(max_length=idempotency.MAX_KEY_CHARS)] = None,
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Submit the task's form; the output, its audit event and the flow's resume commit together."""
    expected_version = _parse_if_match(if_match)
    path = request.url.path
    try:
        with session_scope() as session:
            if replayed := _stored_answer(session, user=user.name, key=idempotency_key, path=path):
                return replayed
            task = actions.complete_task(
                session,
                task_id=task_id,
                principal=user,
                data=body.data,
                expected_version=expected_version,
            )
            answer = jsonable_encoder(present_task(task))
            _remember(session, user=user.name, key=idempotency_key, path=path, answer=answer)
            background.add_task(deliver_now, new_message_ids(session))
    except Conflict:
        # A concurrent request with the same key may have won: then its answer is ours.
        if replayed := _answer_of_concurrent_request(user=user.name, key=idempotency_key, path=path):
            return replayed
        raise
    return JSONResponse(answer, status_code=200)


@router.post("/{task_id}/comments", response_model=CommentOut, status_code=201, responses=error_responses(404))
def comment(task_id: str, body: CommentIn, user: CurrentUser) -> CommentOut:
    """Add a comment to the task."""
    with session_scope() as session:
        added = actions.add_comment(session, task_id=task_id, principal=user, text=body.text)
        session.flush()
        return CommentOut(author=added.author, text=added.text, created_at=added.created_at)
