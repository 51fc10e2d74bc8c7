"""Timers and daily reminders: armed once, fired once, whatever the number of sweepers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from ecomflow.engine.db.models import AuditEvent, OutboxMessage
from ecomflow.engine.db.sessions import session_scope
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.instances.timers import arm_timer, fire_due_timers, timer_pause_prefix
from ecomflow.engine.sla.reminders import send_daily_reminders
from ecomflow.engine.tasks.step_tasks import open_task
from tests.factories import make_instance

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def _events(instance_id: str, type: str) -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.instance_id == instance_id, AuditEvent.type == type)
        )


class TestArmTimer:
    def test_arming_twice_keeps_the_first_timer(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            first = arm_timer(
                session, instance_id=instance_id, step_key="go_live", round=1, fire_at=T0 + timedelta(hours=2), now=T0
            )
            again = arm_timer(
                session, instance_id=instance_id, step_key="go_live", round=1, fire_at=T0 + timedelta(days=9), now=T0
            )
            assert again.id == first.id and again.fire_at == T0 + timedelta(hours=2) and again.fired_at is None
        assert _events(instance_id, "timer.armed") == 1

    def test_a_time_already_past_fires_at_once(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            timer = arm_timer(
                session, instance_id=instance_id, step_key="go_live", round=1, fire_at=T0 - timedelta(minutes=1), now=T0
            )
            assert timer.fired_at == T0


class TestFireDueTimers:
    def test_fires_only_when_due_and_only_once(self, clean_db: str) -> None:
        instance_id = make_instance()
        with session_scope() as session:
            timer_id = arm_timer(
                session, instance_id=instance_id, step_key="go_live", round=1, fire_at=T0 + timedelta(hours=1), now=T0
            ).id
        with session_scope() as session:
            assert fire_due_timers(session, now=T0 + timedelta(minutes=59)) == []
        with session_scope() as session:
            assert [t.id for t in fire_due_timers(session, now=T0 + timedelta(hours=1))] == [timer_id]
        with session_scope() as session:  # a second sweeper a moment later finds nothing left
            assert fire_due_timers(session, now=T0 + timedelta(hours=2)) == []
        with session_scope() as session:
            resumes = session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.instance_id == instance_id, OutboxMessage.kind == "resume_run"
                )
            ).all()
        assert [m.payload["pause_key_prefix"] for m in resumes] == [timer_pause_prefix(timer_id)]
        assert _events(instance_id, "timer.fired") == 1


class TestDailyReminders:
    def test_an_open_review_result_is_reminded_once_a_day(self, clean_db: str) -> None:
        definitions = get_definitions()
        instance_id = make_instance(
            process="ads_and_events", params={"campaign": "双11", "skus": ["SKU-1"], "budget": 3000}
        )
        ads = definitions.process("ads_and_events")
        with session_scope() as session:
            open_task(session, instance_id=instance_id, step=ads.step("review_result"), now=T0)
            # Other steps have no daily reminder.
            open_task(session, instance_id=instance_id, step=ads.step("sign_up"), now=T0)
        for hours, expected in ((23, 0), (24, 1), (30, 0), (48, 1)):
            with session_scope() as session:
                reminded = send_daily_reminders(session, now=T0 + timedelta(hours=hours))
                assert len(reminded) == expected, hours
        assert _events(instance_id, "task.reminded") == 2
