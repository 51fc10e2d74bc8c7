"""Business time: working hours, weekends, holidays and make-up workdays in one time zone.

A due of whole days (Nd) counts working days and keeps the time of day; anything else counts
working hours and minutes. A start outside working hours counts from the next working moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WALL_CLOCK", "BusinessCalendar"]

DAY = timedelta(days=1)
# Far enough for any due time flows.yaml can hold; stops a calendar without working days from looping.
_MAX_DAYS_SCANNED = 3660


@dataclass(frozen=True, kw_only=True)
class BusinessCalendar:
    """When the team works; all arithmetic returns aware UTC datetimes."""

    timezone: str = "UTC"
    # Minutes after local midnight: (540, 720) is 09:00-12:00; (0, 1440) the whole day.
    working_hours: tuple[tuple[int, int], ...] = ((0, 24 * 60),)
    weekends: frozenset[int] = frozenset()  # ISO weekdays: 6 = Saturday, 7 = Sunday
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # make-up working days (调休) that fall on a weekend
    wall_clock: bool = field(default=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """Return whether people work on this local date."""
        if day in self.workdays:
            return True
        return day.isoweekday() not in self.weekends and day not in self.holidays

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """Return the moment `amount` of business time after start."""
        if self.wall_clock:
            return start + amount
        moment = self.next_working_moment(start)
        if amount.days:
            moment = self._add_working_days(moment, amount.days)
        rest = amount - timedelta(days=amount.days)
        return self._add_working_time(moment, rest) if rest else moment

    def fraction_of(self, start: datetime, end: datetime, fraction: float) -> datetime:
        """Return the moment `fraction` of the business time from start to end has passed."""
        if self.wall_clock:
            return start + (end - start) * fraction
        begin = self.next_working_moment(start)
        return self._add_working_time(begin, self.working_time_between(begin, end) * fraction)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Return the business time between two moments (zero if end is not after start)."""
        if self.wall_clock:
            return max(end - start, timedelta(0))
        total = timedelta(0)
        for opens, closes in self._intervals_from(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total

    def next_working_moment(self, moment: datetime) -> datetime:
        """Return moment itself if it is in working hours, else the next opening."""
        if self.wall_clock:
            return moment
        opens, _ = next(self._intervals_from(moment))
        return max(opens, moment)

    def _add_working_days(self, moment: datetime, days: int) -> datetime:
        local = moment.astimezone(self.zone)
        day = local.date()
        for _ in range(_MAX_DAYS_SCANNED):
            if days == 0:
                break
            day += DAY
            if self.is_working_day(day):
                days -= 1
        at = datetime.combine(day, local.time().replace(tzinfo=None), self.zone)
        return at.astimezone(UTC)

    def _add_working_time(self, moment: datetime, amount: timedelta) -> datetime:
        left = amount
        for opens, closes in self._intervals_from(moment):
            begin = max(opens, moment)
            if begin + left <= closes:
                return (begin + left).astimezone(UTC)
            left -= closes - begin
        raise ValueError(f"the calendar has no working time within {_MAX_DAYS_SCANNED} days of {moment.isoformat()}")

    def _intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the working intervals (UTC) that end after moment, in order."""
        zone = self.zone
        day = moment.astimezone(zone).date()
        for _ in range(_MAX_DAYS_SCANNED):
            if self.is_working_day(day):
                midnight = datetime.combine(day, time(0), zone)
                for opens, closes in self.working_hours:
                    start = (midnight + timedelta(minutes=opens)).astimezone(UTC)
                    end = (midnight + timedelta(minutes=closes)).astimezone(UTC)
                    if end > moment:
                        yield start, end
            day += DAY
        raise ValueError(f"the calendar has no working time within {_MAX_DAYS_SCANNED} days of {moment.isoformat()}")


WALL_CLOCK = BusinessCalendar(wall_clock=True)
