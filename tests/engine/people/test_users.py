"""Users, roles and API tokens: tokens are stored hashed and shown once."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from ecomflow.cli import app as cli
from ecomflow.engine import access
from ecomflow.engine.db.models import ApiToken, Base, User
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.errors import Conflict, Unauthorized, ValidationFailed
from ecomflow.engine.people.principals import Principal
from ecomflow.engine.people.users import add_user, authenticate, revoke_tokens
from tests.factories import make_user


def _authenticate(token: str) -> Principal:
    with session_scope() as session:
        return authenticate(session, token)


def _every_stored_value() -> list[str]:
    """Return every value in every table, as text."""
    with session_scope() as session:
        return [
            str(value)
            for table in Base.metadata.sorted_tables
            for row in session.execute(text(f"SELECT * FROM {table.name}"))
            for value in row
        ]


class TestAddUser:
    def test_token_is_stored_only_as_its_hash(self, clean_db: str) -> None:
        _, token = make_user(name="carol", roles=("warehouse",))
        with session_scope() as session:
            [stored] = session.scalars(select(ApiToken))
            assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert not any(token in value for value in _every_stored_value())

    def test_each_user_gets_a_different_token(self, clean_db: str) -> None:
        _, first = make_user(roles=("warehouse",))
        _, second = make_user(roles=("warehouse",))
        assert first != second and first.startswith("ecf_")

    def test_unknown_role_is_refused(self, clean_db: str) -> None:
        with pytest.raises(ValidationFailed) as refused, session_scope() as session:
            add_user(session, name="dave", roles=["warehouse", "janitor"], known_roles=get_definitions().roles)
        assert [p.field for p in refused.value.problems] == ["roles"]
        assert "janitor" in refused.value.detail
        with session_scope() as session:
            assert session.scalar(select(User).where(User.name == "dave")) is None

    def test_at_least_one_role_is_required(self, clean_db: str) -> None:
        with pytest.raises(ValidationFailed, match="at least one role"), session_scope() as session:
            add_user(session, name="erin", roles=[], known_roles=get_definitions().roles)

    def test_a_name_is_taken_once(self, clean_db: str) -> None:
        make_user(name="frank", roles=("warehouse",))
        with pytest.raises(Conflict, match="frank"):
            make_user(name="frank", roles=("owner",))


class TestAuthenticate:
    def test_token_gives_the_user_and_roles(self, clean_db: str) -> None:
        _, token = make_user(name="gina", roles=("warehouse", "customer_service"))
        principal = _authenticate(token)
        assert principal.name == "gina"
        assert principal.roles == {"warehouse", "customer_service"}
        assert not access.is_manager(principal)

    def test_unknown_token_is_refused(self, clean_db: str) -> None:
        make_user(roles=("warehouse",))
        with pytest.raises(Unauthorized):
            _authenticate("ecf_not-a-real-token")

    def test_revoked_token_is_refused(self, clean_db: str) -> None:
        _, token = make_user(name="hank", roles=("warehouse",))
        with session_scope() as session:
            assert revoke_tokens(session, name="hank") == 1
        with pytest.raises(Unauthorized):
            _authenticate(token)

    def test_deactivated_user_is_refused(self, clean_db: str) -> None:
        _, token = make_user(name="ivy", roles=("warehouse",))
        with session_scope() as session:
            session.execute(update(User).where(User.name == "ivy").values(active=False))
        with pytest.raises(Unauthorized):
            _authenticate(token)


class TestUsersAddCommand:
    def test_prints_a_token_once_that_authenticates(self, clean_db: str) -> None:
        result = CliRunner().invoke(cli, ["users", "add", "judy", "--role", "warehouse", "--role", "operations"])
        assert result.exit_code == 0, result.output
        [token] = result.stdout.split()
        principal = _authenticate(token)
        assert principal.name == "judy" and principal.roles == {"warehouse", "operations"}
        assert not any(token in value for value in _every_stored_value())

    def test_unknown_role_is_an_error(self, clean_db: str) -> None:
        result = CliRunner().invoke(cli, ["users", "add", "kim", "--role", "janitor"])
        assert result.exit_code == 2
        assert "unknown role(s) janitor" in result.stderr
        assert result.stdout == ""
        with session_scope() as session:
            assert session.scalar(select(User).where(User.name == "kim")) is None
