"""Fuzz every operation of the OpenAPI over real HTTP: no 5xx, and every response as documented.

Schemathesis generates valid and invalid requests from the app's own OpenAPI and sends them to
the uvicorn server of tests/api/conftest.py, as a manager or as a staff member (drawn per
example). A few real objects are seeded first, and path ids, user names and task ids in bodies
are sometimes replaced by real ones, so the fuzzer reaches past the 404s into claim, complete,
cancel and absence logic. Checks: not_a_server_error, status_code_conformance (every status is
declared in the operation's `responses`), content_type_conformance, response_schema_conformance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ecomflow.api.app import create_app
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Unauthorized
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import authenticate, find_user, issue_token
from ecomflow.engine.tasks.actions import claim_task
from tests.api.conftest import ApiServer
from tests.conftest import empty_all_tables
from tests.factories import make_instance, make_task, make_user, return_params

# The web UI under /ui (another piece of work) serves HTML, not this JSON contract. The pushed feed under
# /inbound takes a per-source signature, not these bearer tokens (tests/api/test_inbound_api.py covers it),
# and its documented example payload cannot be combined with the callers drawn here.
SCHEMA = schemathesis.openapi.from_dict(create_app().openapi()).exclude(path_regex=r"^/(ui|inbound)(/|$)")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = {"manager": ("owner",), "staff": ("warehouse", "customer_service")}
# A call that may revoke the caller's token: fresh tokens are issued after it.
REVOKES = re.compile(r"/tokens/revoke$")


@dataclass
class World:
    """What the fuzzer may aim at: users with their tokens, and ids that exist."""

    tokens: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)
    instance_ids: list[str] = field(default_factory=list)


WORLD = World()


def _seed() -> None:
    """Empty the database and create two callers, a colleague, two instances and four tasks (one claimed)."""
    empty_all_tables()
    WORLD.tokens.clear()
    for who, roles in ROLES.items():
        principal, token = make_user(name=f"fuzz-{who}", roles=roles)
        WORLD.names[who], WORLD.tokens[who] = principal.name, token
    make_user(name="fuzz-colleague", roles=("warehouse", "operations"))
    instance_id = make_instance()
    WORLD.instance_ids[:] = [instance_id, make_instance()]
    WORLD.task_ids[:] = [
        make_task(step=step, instance_id=instance_id) for step in ("inspect", "await_parcel", "cs_review", "reship")
    ]
    with session_scope() as session:  # one task held by the staff member, the others open
        claim_task(
            session, task_id=WORLD.task_ids[0], principal=Principal(name="fuzz-staff", roles=frozenset(ROLES["staff"]))
        )


def _ensure_tokens() -> None:
    """Give each caller a working token again after the fuzzer revoked it."""
    with session_scope() as session:
        for who, token in WORLD.tokens.items():
            try:
                authenticate(session, token)
            except Unauthorized:
                WORLD.tokens[who] = issue_token(session, user=find_user(session, WORLD.names[who]))


@SCHEMA.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Keep the generated ids, or aim at seeded objects that exist."""
    options = [st.just(path_parameters)]
    if not isinstance(path_parameters, dict):
        return options[0]
    if "task_id" in path_parameters:
        options.append(st.sampled_from(WORLD.task_ids).map(lambda i: {**path_parameters, "task_id": i}))
    if "instance_id" in path_parameters:
        options.append(st.sampled_from(WORLD.instance_ids).map(lambda i: {**path_parameters, "instance_id": i}))
    if "name" in path_parameters:
        names = [*WORLD.names.values(), "fuzz-colleague"]
        options.append(st.sampled_from(names).map(lambda n: {**path_parameters, "name": n}))
    if "key" in path_parameters:
        options.append(
            st.sampled_from(["returns_exchange", "presales_order"]).map(lambda k: {**path_parameters, "key": k})
        )
    return st.one_of(options)


@SCHEMA.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    """Sometimes name a real colleague or real task ids in the body."""
    if not isinstance(body, dict):
        return st.just(body)
    options = [st.just(body)]
    if "user" in body:
        options.append(st.sampled_from(["fuzz-colleague", "fuzz-staff"]).map(lambda u: {**body, "user": u}))
    if "task_ids" in body:
        options.append(st.lists(st.sampled_from(WORLD.task_ids), max_size=4).map(lambda ids: {**body, "task_ids": ids}))
    if "params" in body:
        keys = st.sampled_from(["BK-1", "BK-2"])  # repeated: a second start of an active one is a 409
        options.append(keys.map(lambda key: {**body, "business_key": key, "params": return_params()}))
    if "data" in body:
        options.append(
            st.just({**body, "data": {"condition": "damaged", "restock": "no", "deduction": 5, "notes": "dent"}})
        )
    return st.one_of(options)


@pytest.fixture(scope="module")
def world(api_server: ApiServer) -> Iterator[World]:
    _seed()
    return WORLD


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@SCHEMA.parametrize()
@SCHEMA.given(caller=st.sampled_from(sorted(ROLES)))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, caller: str, world: World, api_server: ApiServer, http: requests.Session
) -> None:
    case.call_and_validate(
        base_url=api_server.url,
        session=http,
        headers={"Authorization": f"Bearer {world.tokens[caller]}"},
        checks=CHECKS,
        timeout=30,
    )
    if REVOKES.search(case.operation.path):
        _ensure_tokens()
