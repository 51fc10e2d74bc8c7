"""Request dependencies as named types: the caller and the process definitions."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from engine.db import session_scope
from engine.definitions import Definitions
from engine.errors import Unauthorized
from engine.principals import Principal
from engine.process_specs import get_definitions
from engine.users import authenticate


def current_principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Return the caller named by the bearer token, or raise Unauthorized."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    with session_scope() as session:
        return authenticate(session, token.strip())


CurrentUser = Annotated[Principal, Depends(current_principal)]
DefinitionsDep = Annotated[Definitions, Depends(get_definitions)]
