"""The process catalogue, and starting instances."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from ecomflow.api.delivery import deliver_now
from ecomflow.api.deps import BearerToken, CurrentUser, DefinitionsDep
from ecomflow.api.errors import error_responses
from ecomflow.api.flow_registry import has_flow
from ecomflow.api.presenters import present_instance, present_process
from ecomflow.api.responses import ModelResponse
from ecomflow.api.schemas import InstanceOut, MeOut, ProcessOut, StartInstanceIn, TokensRevokedOut
from ecomflow.engine import access
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Conflict
from ecomflow.engine.events.outbox import new_message_ids
from ecomflow.engine.instances.lifecycle import start_instance
from ecomflow.engine.people.users import revoke_token

router = APIRouter(tags=["processes"], responses=error_responses(401, 413, 422))


@router.get("/me", response_model=MeOut)
async def me(user: CurrentUser) -> ModelResponse:
    """Return the caller and their roles (async: nothing to read that authentication has not read)."""
    return ModelResponse(MeOut(name=user.name, roles=sorted(user.roles), is_manager=access.is_manager(user)))


@router.post("/me/tokens/revoke", response_model=TokensRevokedOut)
def revoke_my_token(user: CurrentUser, token: BearerToken) -> TokensRevokedOut:
    """Revoke the token this request carries: from now on it answers 401 (the caller's other tokens stay)."""
    with session_scope() as session:
        return TokensRevokedOut(revoked=revoke_token(session, token=token, actor=user.name))


@router.get("/processes", response_model=list[ProcessOut])
def list_processes(user: CurrentUser, definitions: DefinitionsDep) -> list[ProcessOut]:
    """Return every process with its forms as JSON Schema."""
    return [present_process(spec, principal=user) for spec in definitions.processes.values()]


@router.get("/processes/{key}", response_model=ProcessOut, responses=error_responses(404))
def get_process(key: str, user: CurrentUser, definitions: DefinitionsDep) -> ProcessOut:
    """Return one process definition."""
    return present_process(definitions.process(key), principal=user)


@router.post(
    "/processes/{key}/instances",
    response_model=InstanceOut,
    status_code=201,
    responses=error_responses(403, 404, 409),
)
def start(
    key: str, body: StartInstanceIn, user: CurrentUser, definitions: DefinitionsDep, background: BackgroundTasks
) -> InstanceOut:
    """Start an instance (the process's starters only); its flow run is created right after the commit."""
    if key in definitions.processes and not has_flow(key):
        raise Conflict(f"process {key} is defined in flows.yaml but has no flow to run it yet", process=key)
    with session_scope() as session:
        instance = start_instance(
            session,
            definitions=definitions,
            process_key=key,
            business_key=body.business_key,
            params=body.params,
            principal=user,
        )
        background.add_task(deliver_now, new_message_ids(session))
        return present_instance(instance)
