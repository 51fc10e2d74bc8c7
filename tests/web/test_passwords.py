"""Web passwords (engine.users): scrypt with a random salt, one answer for every mismatch, the CLI that sets them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ecomflow.cli import app as cli
from ecomflow.engine.db.models import User
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import NotFound, Unauthorized, ValidationFailed
from ecomflow.engine.people.users import WRONG_CREDENTIALS, find_user, password_matches, set_password, verify_password
from tests.factories import make_user


def _stored(name: str) -> str | None:
    with session_scope() as session:
        return find_user(session, name).password_hash


def _verify(name: str, password: str):
    with session_scope() as session:
        return verify_password(session, name=name, password=password)


class TestPasswords:
    def test_a_password_is_stored_as_salted_scrypt_with_its_parameters(self, clean_db):
        make_user(name="mei", roles=("product",))
        with session_scope() as session:
            set_password(session, name="mei", password="a long secret")
        first = _stored("mei")
        with session_scope() as session:
            set_password(session, name="mei", password="a long secret")
        scheme, n, r, p, _salt, _digest = _stored("mei").split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "5")
        assert "a long secret" not in first and first != _stored("mei")  # a new salt each time
        assert _verify("mei", "a long secret").roles == frozenset({"product"})

    def test_a_wrong_password_an_unknown_user_and_an_inactive_one_get_the_same_refusal(self, clean_db):
        make_user(name="mei")
        make_user(name="gone")
        with session_scope() as session:
            set_password(session, name="mei", password="a long secret")
            set_password(session, name="gone", password="a long secret")
            session.query(User).filter(User.name == "gone").update({"active": False})
        for name, password in (
            ("mei", "wrong secret"),
            ("nobody", "a long secret"),
            ("gone", "a long secret"),
            ("mei", "x" * 300),
        ):
            with pytest.raises(Unauthorized) as refused:
                _verify(name, password)
            assert refused.value.detail == WRONG_CREDENTIALS

    def test_a_user_without_a_password_cannot_sign_in(self, clean_db):
        make_user(name="mei")
        with pytest.raises(Unauthorized):
            _verify("mei", "")

    @pytest.mark.parametrize("password", ["short", " " * 12, "x" * 257])
    def test_a_password_must_be_8_to_256_characters(self, clean_db, password):
        make_user(name="mei")
        with session_scope() as session, pytest.raises(ValidationFailed) as refused:
            set_password(session, name="mei", password=password)
        assert refused.value.problems[0].field == "password"

    def test_an_unknown_user_gets_no_password(self, clean_db):
        with session_scope() as session, pytest.raises(NotFound):
            set_password(session, name="nobody", password="a long secret")

    @pytest.mark.db_independent
    @pytest.mark.parametrize(
        "stored", [None, "", "bcrypt$1$2$3$x$y", "scrypt$99999999$8$1$AAAA$AAAA", "scrypt$16384$8$5$%%%$AAAA"]
    )
    def test_a_stored_value_that_is_no_scrypt_hash_matches_nothing(self, stored):
        assert password_matches(stored, "anything") is False


class TestPasswordCommand:
    def test_sets_a_password_given_as_an_option_or_asked_for_twice(self, clean_db):
        make_user(name="mei")
        given = CliRunner().invoke(cli, ["users", "password", "mei", "--password", "first secret"])
        assert given.exit_code == 0, given.output
        assert _verify("mei", "first secret")
        asked = CliRunner().invoke(cli, ["users", "password", "mei"], input="second secret\nsecond secret\n")
        assert asked.exit_code == 0, asked.output
        assert _verify("mei", "second secret")

    def test_says_what_is_wrong(self, clean_db):
        unknown = CliRunner().invoke(cli, ["users", "password", "nobody", "--password", "a long secret"])
        assert unknown.exit_code == 2 and "user nobody does not exist" in unknown.output
        make_user(name="mei")
        short = CliRunner().invoke(cli, ["users", "password", "mei", "--password", "short"])
        assert short.exit_code == 2 and "8 to 256 characters" in short.output
