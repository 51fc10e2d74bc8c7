"""Contact details: who may change them, what is accepted, and what the audit trail keeps."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ecomflow.engine.db.models import AuditEvent
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.errors import Forbidden, NotFound, ValidationFailed
from ecomflow.engine.people.contacts import Contact, contact_of, set_contact
from ecomflow.engine.people.principals import SYSTEM
from ecomflow.engine.people.users import find_user
from tests.factories import make_user


def contact(name: str) -> Contact:
    with session_scope() as session:
        return contact_of(find_user(session, name))


class TestSetContact:
    def test_a_user_sets_their_own_and_the_audit_names_fields_not_values(self, clean_db: str) -> None:
        lin, _ = make_user(name="lin")
        with session_scope() as session:
            set_contact(
                session, name="lin", principal=lin, changes={"mobile": " 13800000001 ", "email": "lin@example.com"}
            )
        assert contact("lin") == Contact(mobile="13800000001", email="lin@example.com")
        with session_scope() as session:
            [event] = session.scalars(select(AuditEvent).where(AuditEvent.type == "user.contact_changed"))
            assert (event.actor, event.data) == ("lin", {"user": "lin", "fields": ["email", "mobile"]})
            assert "13800000001" not in json.dumps(event.data)

    def test_an_empty_value_clears_and_fields_left_out_stay(self, clean_db: str) -> None:
        make_user(name="lin")
        with session_scope() as session:
            set_contact(session, name="lin", principal=SYSTEM, changes={"mobile": "13800000001", "wecom_id": "LinWei"})
        with session_scope() as session:
            set_contact(session, name="lin", principal=SYSTEM, changes={"mobile": ""})
        assert contact("lin") == Contact(wecom_id="LinWei")

    def test_a_manager_may_change_anyones_and_a_colleague_may_not(self, clean_db: str) -> None:
        make_user(name="lin")
        boss, _ = make_user(name="boss", roles=("operations",))
        colleague, _ = make_user(name="chen")
        with session_scope() as session:
            set_contact(session, name="lin", principal=boss, changes={"feishu_id": "ou_abc"})
        with pytest.raises(Forbidden), session_scope() as session:
            set_contact(session, name="lin", principal=colleague, changes={"feishu_id": "ou_evil"})
        assert contact("lin").feishu_id == "ou_abc"

    def test_bad_values_are_refused_per_field_and_nothing_changes(self, clean_db: str) -> None:
        make_user(name="lin")
        with pytest.raises(ValidationFailed) as refused, session_scope() as session:
            set_contact(
                session, name="lin", principal=SYSTEM, changes={"mobile": "call me", "email": "lin", "fax": "1"}
            )
        assert {(p.field, p.rule) for p in refused.value.problems} == {
            ("mobile", "pattern"),
            ("email", "pattern"),
            ("fax", "unknown"),
        }
        assert contact("lin") == Contact()

    def test_an_unknown_user_is_not_found(self, clean_db: str) -> None:
        with pytest.raises(NotFound), session_scope() as session:
            set_contact(session, name="ghost", principal=SYSTEM, changes={"mobile": "13800000001"})
