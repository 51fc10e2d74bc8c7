"""Business time: due dates over weekends, holidays and make-up workdays, reminder points, and the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ecomflow.engine.definitions.business_calendar import WALL_CLOCK, BusinessCalendar
from ecomflow.engine.definitions.current import get_definitions

pytestmark = pytest.mark.db_independent

SHANGHAI = ZoneInfo("Asia/Shanghai")
SAT, SUN = 6, 7


def shanghai(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """Return a Shanghai wall-clock moment (the shipped calendar's zone)."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def shipped() -> BusinessCalendar:
    """The calendar flows.yaml ships: Shanghai, 09:00-12:00 + 13:30-18:00, weekends, 2026 holidays."""
    return get_definitions().calendar


def nine_to_five(**overrides: object) -> BusinessCalendar:
    """A small hand-made calendar: UTC, 09:00-17:00 in one piece, Saturday and Sunday off."""
    fields: dict[str, object] = {
        "timezone": "UTC",
        "working_hours": ((9 * 60, 17 * 60),),
        "weekends": frozenset({SAT, SUN}),
    }
    return BusinessCalendar(**{**fields, **overrides})


class TestShippedCalendarDueDates:
    def test_working_hours_skip_the_weekend(self, shipped: BusinessCalendar) -> None:
        # Friday 16:00 + 4h: two hours on Friday, two on Monday morning.
        assert shipped.add(shanghai(2026, 11, 27, 16), timedelta(hours=4)) == shanghai(2026, 11, 30, 11)

    def test_working_days_skip_the_weekend_and_keep_the_time_of_day(self, shipped: BusinessCalendar) -> None:
        assert shipped.add(shanghai(2026, 11, 27, 10), timedelta(days=1)) == shanghai(2026, 11, 30, 10)
        assert shipped.add(shanghai(2026, 11, 26, 15), timedelta(days=2)) == shanghai(2026, 11, 30, 15)

    def test_the_national_day_week_does_not_count(self, shipped: BusinessCalendar) -> None:
        # 30 Sep is the last workday before 1-7 Oct; 8 and 9 Oct are the first two after.
        assert shipped.add(shanghai(2026, 9, 30, 10), timedelta(days=2)) == shanghai(2026, 10, 9, 10)
        assert shipped.add(shanghai(2026, 9, 30, 16), timedelta(hours=4)) == shanghai(2026, 10, 8, 11)

    def test_the_make_up_saturday_after_national_day_counts(self, shipped: BusinessCalendar) -> None:
        assert shipped.is_working_day(date(2026, 10, 10))
        assert shipped.add(shanghai(2026, 9, 30, 10), timedelta(days=3)) == shanghai(2026, 10, 10, 10)
        assert shipped.add(shanghai(2026, 10, 9, 17), timedelta(hours=2)) == shanghai(2026, 10, 10, 10)

    def test_the_make_up_sunday_before_mid_autumn_counts(self, shipped: BusinessCalendar) -> None:
        # 20 Sep is a Sunday worked in exchange for 25-27 Sep.
        assert shipped.add(shanghai(2026, 9, 19, 10), timedelta(hours=1)) == shanghai(2026, 9, 20, 10)
        assert shipped.add(shanghai(2026, 9, 24, 10), timedelta(days=1)) == shanghai(2026, 9, 28, 10)

    def test_a_start_in_the_evening_counts_from_the_next_morning(self, shipped: BusinessCalendar) -> None:
        monday_evening = shanghai(2026, 11, 23, 20)
        assert shipped.add(monday_evening, timedelta(hours=4)) == shanghai(2026, 11, 24, 14, 30)
        assert shipped.add(monday_evening, timedelta(days=1)) == shanghai(2026, 11, 25, 9)

    def test_a_start_in_the_lunch_break_counts_from_the_afternoon(self, shipped: BusinessCalendar) -> None:
        assert shipped.add(shanghai(2026, 11, 23, 12, 30), timedelta(hours=2)) == shanghai(2026, 11, 23, 15, 30)

    def test_work_spanning_lunch_pauses_over_it(self, shipped: BusinessCalendar) -> None:
        assert shipped.add(shanghai(2026, 11, 23, 11), timedelta(hours=2)) == shanghai(2026, 11, 23, 14, 30)

    def test_results_are_utc(self, shipped: BusinessCalendar) -> None:
        due = shipped.add(shanghai(2026, 11, 23, 10), timedelta(hours=1))
        assert due.tzinfo == UTC and due == utc(2026, 11, 23, 3)


class TestShippedCalendarReminderPoints:
    def test_eighty_percent_of_a_day(self, shipped: BusinessCalendar) -> None:
        start = shanghai(2026, 11, 23, 9)
        due = shipped.add(start, timedelta(days=1))
        # One working day is 7.5 h; 80 % is 6 h: 09:00-12:00, then 13:30-16:30.
        assert shipped.fraction_of(start, due, 0.8) == shanghai(2026, 11, 23, 16, 30)

    def test_eighty_percent_of_four_hours_across_lunch(self, shipped: BusinessCalendar) -> None:
        start = shanghai(2026, 11, 23, 10)
        due = shipped.add(start, timedelta(hours=4))
        assert due == shanghai(2026, 11, 23, 15, 30)
        assert shipped.fraction_of(start, due, 0.8) == shanghai(2026, 11, 23, 14, 42)

    def test_eighty_percent_across_a_weekend(self, shipped: BusinessCalendar) -> None:
        start = shanghai(2026, 11, 27, 16)  # Friday
        due = shipped.add(start, timedelta(hours=5))
        assert due == shanghai(2026, 11, 30, 12)
        # 4 h in: 2 h on Friday and 2 h on Monday.
        assert shipped.fraction_of(start, due, 0.8) == shanghai(2026, 11, 30, 11)

    def test_eighty_percent_across_national_day(self, shipped: BusinessCalendar) -> None:
        start = shanghai(2026, 9, 30, 9)
        due = shipped.add(start, timedelta(days=2))
        assert due == shanghai(2026, 10, 9, 9)
        # 15 h of work; 12 h in is 30 Sep all day (7.5 h) plus 4.5 h of 8 Oct.
        assert shipped.fraction_of(start, due, 0.8) == shanghai(2026, 10, 8, 15)

    def test_a_reminder_point_of_an_evening_start_lies_in_working_hours(self, shipped: BusinessCalendar) -> None:
        start = shanghai(2026, 11, 23, 21)
        due = shipped.add(start, timedelta(hours=2))
        assert due == shanghai(2026, 11, 24, 11)
        assert shipped.fraction_of(start, due, 0.5) == shanghai(2026, 11, 24, 10)

    def test_working_time_between_ignores_nights_lunches_and_holidays(self, shipped: BusinessCalendar) -> None:
        assert shipped.working_time_between(shanghai(2026, 11, 23, 9), shanghai(2026, 11, 24, 9)) == timedelta(
            hours=7.5
        )
        assert shipped.working_time_between(shanghai(2026, 9, 30, 18), shanghai(2026, 10, 8, 9)) == timedelta(0)


class TestHandMadeCalendars:
    def test_hours_carry_over_to_the_next_working_day(self) -> None:
        calendar = nine_to_five()
        assert calendar.add(utc(2026, 11, 23, 12), timedelta(hours=10)) == utc(2026, 11, 24, 14)

    def test_a_holiday_is_skipped(self) -> None:
        calendar = nine_to_five(holidays=frozenset({date(2026, 11, 24)}))
        assert calendar.add(utc(2026, 11, 23, 12), timedelta(hours=10)) == utc(2026, 11, 25, 14)
        assert calendar.add(utc(2026, 11, 23, 12), timedelta(days=1)) == utc(2026, 11, 25, 12)

    def test_a_make_up_saturday_is_worked(self) -> None:
        calendar = nine_to_five(workdays=frozenset({date(2026, 11, 28)}))
        assert calendar.add(utc(2026, 11, 27, 16), timedelta(hours=2)) == utc(2026, 11, 28, 10)
        assert nine_to_five().add(utc(2026, 11, 27, 16), timedelta(hours=2)) == utc(2026, 11, 30, 10)

    def test_a_start_before_opening_counts_from_opening(self) -> None:
        assert nine_to_five().add(utc(2026, 11, 23, 6), timedelta(hours=3)) == utc(2026, 11, 23, 12)

    def test_a_start_on_saturday_counts_days_from_monday_morning(self) -> None:
        assert nine_to_five().add(utc(2026, 11, 28, 15), timedelta(days=1)) == utc(2026, 12, 1, 9)

    def test_half_way_across_a_weekend(self) -> None:
        calendar = nine_to_five()
        start = utc(2026, 11, 27, 13)  # Friday
        due = calendar.add(start, timedelta(hours=8))
        assert due == utc(2026, 11, 30, 13)
        assert calendar.fraction_of(start, due, 0.5) == utc(2026, 11, 27, 17)

    def test_working_hours_are_local_to_the_calendar_zone(self) -> None:
        tokyo = nine_to_five(timezone="Asia/Tokyo")
        # 09:00 in Tokyo is 00:00 UTC.
        assert tokyo.add(utc(2026, 11, 22, 23), timedelta(hours=1)) == utc(2026, 11, 23, 1)

    def test_an_all_day_calendar_counts_weekdays_only(self) -> None:
        calendar = BusinessCalendar(weekends=frozenset({SAT, SUN}))
        assert calendar.add(utc(2026, 11, 27, 20), timedelta(days=1)) == utc(2026, 11, 30, 20)
        assert calendar.add(utc(2026, 11, 28, 20), timedelta(hours=3)) == utc(2026, 11, 30, 3)

    def test_hours_across_midnight_lose_nothing(self) -> None:
        calendar = BusinessCalendar(weekends=frozenset({SAT, SUN}))
        # Tuesday 22:00 + 4h is Wednesday 02:00; Friday 22:00 + 4h is Monday 02:00.
        assert calendar.add(utc(2026, 11, 24, 22), timedelta(hours=4)) == utc(2026, 11, 25, 2)
        assert calendar.add(utc(2026, 11, 27, 22), timedelta(hours=4)) == utc(2026, 11, 30, 2)


class TestWallClock:
    def test_adds_every_minute_through_nights_weekends_and_holidays(self) -> None:
        start = shanghai(2026, 10, 3, 23, 55)  # a Saturday in the National Day week, late at night
        assert WALL_CLOCK.add(start, timedelta(minutes=10)) == shanghai(2026, 10, 4, 0, 5)
        assert WALL_CLOCK.add(start, timedelta(days=2)) == shanghai(2026, 10, 5, 23, 55)

    def test_reminder_point_is_a_plain_fraction(self) -> None:
        start = shanghai(2026, 11, 28, 23)
        assert WALL_CLOCK.fraction_of(start, start + timedelta(minutes=10), 0.8) == start + timedelta(minutes=8)

    def test_working_time_is_elapsed_time(self) -> None:
        start = shanghai(2026, 11, 28, 23)
        assert WALL_CLOCK.working_time_between(start, start + timedelta(hours=3)) == timedelta(hours=3)
        assert WALL_CLOCK.working_time_between(start, start - timedelta(hours=3)) == timedelta(0)
