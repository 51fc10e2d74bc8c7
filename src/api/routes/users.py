"""Users: who they are, and their absences (marking someone away hands over their claimed tasks)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from ecomflow.api.deps import CurrentUser
from ecomflow.api.errors import error_responses
from ecomflow.api.schemas import (
    AbsenceIn,
    AbsenceOut,
    AccessRevokedOut,
    AwayOut,
    ContactIn,
    ContactOut,
    HandoverOut,
    UserOut,
)
from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import User
from ecomflow.engine.db.sessions import read_scope, session_scope
from ecomflow.engine.people.absence import get_user_for, mark_away, mark_back
from ecomflow.engine.people.contacts import contact_of, set_contact
from ecomflow.engine.people.users import is_away, principal_of, revoke_access

router = APIRouter(prefix="/users", tags=["users"], responses=error_responses(401, 413, 422))


@router.get("/{name}", response_model=UserOut, responses=error_responses(403, 404))
def get(name: str, user: CurrentUser) -> UserOut:
    """Return a user's roles and absence (the user themself or a manager)."""
    with read_scope() as session:
        return _present_user(session, get_user_for(session, name=name, principal=user))


@router.put("/{name}/absence", response_model=AwayOut, responses=error_responses(403, 404, 409))
def mark_absent(name: str, body: AbsenceIn, user: CurrentUser) -> AwayOut:
    """Mark the user away; each task they hold goes to the substitute or back to its queue, in one transaction."""
    with session_scope() as session:
        away, handovers = mark_away(
            session,
            name=name,
            principal=user,
            reason=body.reason,
            until=body.until,
            substitute=body.substitute,
        )
        return AwayOut(
            user=_present_user(session, away),
            tasks=[
                HandoverOut(
                    task_id=h.task_id, process=h.process, step=h.step, outcome=h.outcome, to=h.to, reason=h.reason
                )
                for h in handovers
            ],
        )


@router.delete("/{name}/absence", response_model=UserOut, responses=error_responses(403, 404))
def mark_returned(name: str, user: CurrentUser) -> UserOut:
    """End the user's absence: work may be assigned and delegated to them again."""
    with session_scope() as session:
        return _present_user(session, mark_back(session, name=name, principal=user))


@router.post("/{name}/tokens/revoke", response_model=AccessRevokedOut, responses=error_responses(403, 404))
def revoke_user_tokens(name: str, user: CurrentUser) -> AccessRevokedOut:
    """Revoke every token and end every web session of the user (the user themself or a manager).

    Each token answers 401 from now on; each web session's cookie sends its browser back to sign-in.
    """
    with session_scope() as session:
        target = get_user_for(session, name=name, principal=user)
        revoked = revoke_access(session, name=target.name, actor=user.name)
        return AccessRevokedOut(revoked=revoked.tokens, web_sessions_revoked=revoked.web_sessions)


@router.patch("/{name}/contact", response_model=UserOut, responses=error_responses(403, 404))
def change_contact(name: str, body: ContactIn, user: CurrentUser) -> UserOut:
    """Change the user's mobile, email or IM ids, used for @-mentions and email (the user themself or a manager)."""
    with session_scope() as session:
        changed = set_contact(
            session, name=name, principal=user, changes={field: getattr(body, field) for field in body.model_fields_set}
        )
        return _present_user(session, changed)


def _present_user(session: Session, user: User) -> UserOut:
    principal = principal_of(session, user)
    away = is_away(user, now=utcnow())
    return UserOut(
        name=user.name,
        roles=sorted(principal.roles),
        is_manager=access.is_manager(principal),
        active=user.active,
        away=away,
        absence=AbsenceOut(since=user.away_since, until=user.away_until, substitute=user.substitute) if away else None,
        contact=ContactOut(**vars(contact_of(user))),
    )
