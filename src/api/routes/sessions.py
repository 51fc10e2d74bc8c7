"""The caller's own web sessions (/ui sign-ins): list them, end one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.schemas import WebSessionOut
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.people.web_sessions import end_own_web_session, list_live_web_sessions, session_policy

router = APIRouter(prefix="/me/sessions", tags=["users"], responses=error_responses(401, 413, 422))


@router.get("", response_model=list[WebSessionOut])
def list_my_sessions(user: CurrentUser) -> list[WebSessionOut]:
    """Return the caller's live web sessions, the most recently used first.

    A bearer-token request carries no session cookie, so none of them is marked as this request's own.
    """
    policy, now = session_policy(), utcnow()
    with read_scope() as session:
        rows = list_live_web_sessions(session, user_name=user.name, now=now, policy=policy)
        return [
            WebSessionOut(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                expires_at=row.expires_at,
                idle_expires_at=policy.ends_if_unused(row),
                client_address=row.client_address,
                user_agent=row.user_agent,
            )
            for row in rows
        ]


@router.delete("/{session_id}", status_code=204, response_class=Response, responses=error_responses(404))
def end_my_session(session_id: str, user: CurrentUser) -> Response:
    """End one of the caller's web sessions: that browser is signed out at its next request."""
    with session_scope() as session:
        end_own_web_session(session, user_name=user.name, session_id=session_id, now=utcnow(), policy=session_policy())
    return Response(status_code=204)
