"""Request dependencies as named types: the caller and the process definitions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ecomflow.engine.db.sessions import read_connection, read_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.errors import Unauthorized
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import authenticate

# A security scheme, not a header parameter: the OpenAPI then says which routes need a token (all but /health).
_bearer = HTTPBearer(auto_error=False, description="an API token from `ecomflow users add`")


# Async: it reads no database, and a sync dependency costs a threadpool hop of its own on every request.
async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Return the bearer token the caller sent, or raise Unauthorized."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    return token


def current_principal(token: Annotated[str, Depends(bearer_token)]) -> Principal:
    """Return the caller named by the bearer token, or raise Unauthorized.

    No cache: one indexed read per request, so a revoked token or deactivated user is refused on the very
    next request by every API process.
    """
    with read_connection() as connection:
        return authenticate(connection, token)


@contextmanager
def authenticated_read(token: str) -> Iterator[tuple[Session, Principal]]:
    """A read_scope whose first query authenticates the caller, as current_principal does (no cache).

    For a read route: one connection checkout (and its pool ping), BEGIN and ROLLBACK fewer than
    current_principal's own connection followed by the route's, and no threadpool hop for the dependency.
    """
    with read_scope() as session:
        yield session, authenticate(session, token)


BearerToken = Annotated[str, Depends(bearer_token)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
DefinitionsDep = Annotated[Definitions, Depends(get_definitions)]
