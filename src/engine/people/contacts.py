"""Where notifications reach a person: mobile number, email address and an id per IM (DingTalk, WeCom, Feishu)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecomflow.engine import access
from ecomflow.engine.db.models import User
from ecomflow.engine.definitions.forms import FieldProblem
from ecomflow.engine.errors import Forbidden, NotFound, ValidationFailed
from ecomflow.engine.events.audit import record_event
from ecomflow.engine.people.principals import Principal

# Mobile numbers as the robots take them for @-mentions: digits, an optional leading +country code.
MOBILE = re.compile(r"^\+?[0-9]{5,20}$")
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
IM_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class Contact:
    """A person's addresses; None where unknown."""

    mobile: str | None = None
    email: str | None = None
    dingtalk_id: str | None = None
    wecom_id: str | None = None
    feishu_id: str | None = None


CONTACT_FIELDS = tuple(f.name for f in fields(Contact))
_RULES = {
    "mobile": (MOBILE, "digits with an optional leading +, e.g. 13800000000"),
    "email": (EMAIL, "an email address such as lin@example.com"),
    "dingtalk_id": (IM_ID, "letters, digits and _ . @ -, at most 64"),
    "wecom_id": (IM_ID, "letters, digits and _ . @ -, at most 64"),
    "feishu_id": (IM_ID, "letters, digits and _ . @ -, at most 64"),
}


def contact_of(user: User) -> Contact:
    """Return the user's contact details."""
    return Contact(**{name: getattr(user, name) for name in CONTACT_FIELDS})


def set_contact(session: Session, *, name: str, principal: Principal, changes: dict[str, str | None]) -> User:
    """Change some of a user's contact details ("" or None clears one); the user themself or a manager may."""
    if not access.may_change_contact(principal, name):
        raise Forbidden(f"only {name} themself or a manager may change {name}'s contact details", user=name)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user {name} does not exist", user=name)
    cleaned = _checked(changes)
    changed = sorted(field for field, value in cleaned.items() if getattr(user, field) != value)
    for field in changed:
        setattr(user, field, cleaned[field])
    if changed:
        # Which fields changed, never their values: the audit trail holds no personal data it does not need.
        record_event(session, type="user.contact_changed", actor=principal.name, data={"user": name, "fields": changed})
    return user


def _checked(changes: dict[str, str | None]) -> dict[str, str | None]:
    problems = [
        FieldProblem(field, "unknown", f"{field}: not a contact field") for field in changes if field not in _RULES
    ]
    cleaned: dict[str, str | None] = {}
    for field, given in changes.items():
        if field not in _RULES:
            continue
        value = (given or "").strip() or None
        pattern, rule = _RULES[field]
        if value is not None and not pattern.fullmatch(value):
            problems.append(FieldProblem(field, "pattern", f"{field}: expected {rule}"))
        cleaned[field] = value
    if problems:
        raise ValidationFailed("; ".join(p.message for p in problems), problems=problems)
    return cleaned
