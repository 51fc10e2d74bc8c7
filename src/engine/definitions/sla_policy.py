"""Read the business calendar and the SLA policy (reminder, escalation, priority) from flows.yaml."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ecomflow.engine.definitions.business_calendar import BusinessCalendar
from ecomflow.engine.definitions.durations import parse_duration

__all__ = [
    "CLOCKS",
    "MANAGERS",
    "PRIORITIES",
    "Escalation",
    "SlaPolicy",
    "read_calendar",
    "read_escalation",
    "read_sla",
]

MANAGERS = "managers"
CLOCKS = ("business", "wall")
# Named priorities in flows.yaml; the inbox sorts by the number, highest first.
PRIORITIES = {"low": 25, "normal": 50, "high": 75, "urgent": 100}
WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_CALENDAR_KEYS = ("timezone", "working_hours", "weekends", "holidays", "workdays")


@dataclass(frozen=True, kw_only=True)
class Escalation:
    """Who takes over an overdue task and when: `after` past its due time, in the step's clock."""

    to: str  # a role key, or "managers"
    after: timedelta = timedelta(0)
    release: bool = False


@dataclass(frozen=True, kw_only=True)
class SlaPolicy:
    """Defaults for every human step: remind at a fraction of the due time, escalate when overdue."""

    remind_at: float = 0.8
    escalate: Escalation | None = None


def read_calendar(raw: Any, problems: list[str]) -> BusinessCalendar:
    """Return the calendar, appending every problem found."""
    if not isinstance(raw, Mapping) or "timezone" not in raw:
        problems.append("calendar: expected a mapping with a timezone, e.g. {timezone: Asia/Shanghai}")
        return BusinessCalendar()
    for key in raw:
        if key not in _CALENDAR_KEYS:
            problems.append(f"calendar: unknown key {key!r} (allowed: {', '.join(_CALENDAR_KEYS)})")
    zone = read_timezone(raw["timezone"], "calendar.timezone", problems)
    hours = _read_hours(raw.get("working_hours"), problems)
    weekends = _read_weekends(raw.get("weekends", []), problems)
    holidays = _read_dates(raw.get("holidays", []), "calendar.holidays", problems)
    workdays = _read_dates(raw.get("workdays", []), "calendar.workdays", problems)
    if holidays & workdays:
        both = ", ".join(sorted(d.isoformat() for d in holidays & workdays))
        problems.append(f"calendar: {both} listed both as holiday and as workday")
    if hours is None:
        return BusinessCalendar(timezone=zone, weekends=weekends, holidays=holidays, workdays=workdays)
    return BusinessCalendar(timezone=zone, working_hours=hours, weekends=weekends, holidays=holidays, workdays=workdays)


def read_timezone(value: Any, where: str, problems: list[str]) -> str:
    """Return an IANA time zone name, or UTC after recording the problem."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, TypeError, ValueError, OSError):  # OSError: a directory such as 'America'
        problems.append(f"{where}: unknown time zone {value!r} (expected an IANA name such as Asia/Shanghai)")
        return "UTC"
    return value


def _read_hours(raw: Any, problems: list[str]) -> tuple[tuple[int, int], ...] | None:
    if raw is None:
        return None  # every hour of a working day counts
    where = "calendar.working_hours"
    if not isinstance(raw, list) or not raw:
        problems.append(f'{where}: expected a list of "HH:MM-HH:MM" ranges, e.g. ["09:00-12:00", "13:30-18:00"]')
        return None
    ranges = []
    for text in raw:
        match = _HOURS.match(text) if isinstance(text, str) else None
        if match is None:
            problems.append(f'{where}: {text!r} is not a "HH:MM-HH:MM" range')
            continue
        h1, m1, h2, m2 = map(int, match.groups())
        opens, closes = h1 * 60 + m1, h2 * 60 + m2
        if closes > 24 * 60:
            problems.append(f"{where}: {text!r} ends after 24:00")
            continue
        if closes <= opens:
            problems.append(f"{where}: {text!r} must end after it starts")
            continue
        ranges.append((opens, closes))
    ranges.sort()
    for (_, first_end), (second_start, _) in itertools.pairwise(ranges):
        if second_start < first_end:
            problems.append(f"{where}: ranges overlap")
            break
    return tuple(ranges) or None


def _read_weekends(raw: Any, problems: list[str]) -> frozenset[int]:
    if not isinstance(raw, list) or any(not isinstance(day, str) or day not in WEEKDAYS for day in raw):
        problems.append(f"calendar.weekends: expected a list of day names out of {', '.join(WEEKDAYS)}, got {raw!r}")
        return frozenset()
    if len(raw) == len(WEEKDAYS):
        problems.append("calendar.weekends: a calendar needs at least one working weekday")
    return frozenset(WEEKDAYS[day] for day in raw)


def _read_dates(raw: Any, where: str, problems: list[str]) -> frozenset[date]:
    """Read dates and inclusive ranges written "YYYY-MM-DD..YYYY-MM-DD"."""
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list of dates (YYYY-MM-DD) or ranges (YYYY-MM-DD..YYYY-MM-DD)")
        return frozenset()
    days: set[date] = set()
    for item in raw:
        try:
            first, last = _date_range(item)
        except (AttributeError, TypeError, ValueError):
            problems.append(f"{where}: {item!r} is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)")
            continue
        if last < first or (last - first).days > 366:
            problems.append(f"{where}: {item!r} must run forwards and span at most a year")
            continue
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return frozenset(days)


def _date_range(item: Any) -> tuple[date, date]:
    if isinstance(item, date):
        return item, item
    first, _, last = item.partition("..")
    return date.fromisoformat(first), date.fromisoformat(last or first)


def read_sla(raw: Any, roles: Mapping[str, Any], problems: list[str]) -> SlaPolicy:
    """Return the default SLA policy (reminder fraction, escalation)."""
    if raw is None:
        return SlaPolicy()
    if not isinstance(raw, Mapping):
        problems.append("sla: expected {remind_at: <fraction>, escalate: {to, after, release}}")
        return SlaPolicy()
    for extra in set(raw) - {"remind_at", "escalate"}:
        problems.append(f"sla: unknown key {extra!r} (allowed: escalate, remind_at)")
    remind_at = raw.get("remind_at", 0.8)
    if isinstance(remind_at, bool) or not isinstance(remind_at, (int, float)) or not 0 < remind_at < 1:
        problems.append(
            f"sla.remind_at: expected a fraction between 0 and 1 (0.8 = at 80 % of the due time), got {remind_at!r}"
        )
        remind_at = 0.8
    return SlaPolicy(
        remind_at=float(remind_at), escalate=read_escalation(raw.get("escalate"), "sla.escalate", roles, problems)
    )


def read_escalation(raw: Any, where: str, roles: Mapping[str, Any], problems: list[str]) -> Escalation | None:
    """Return an escalation, or None for `false` / absent."""
    if raw is None or raw is False:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected false or {{to: <role or managers>, after: <duration>, release: <bool>}}")
        return None
    for extra in set(raw) - {"to", "after", "release"}:
        problems.append(f"{where}: unknown key {extra!r} (allowed: after, release, to)")
    to = raw.get("to", MANAGERS)
    if not isinstance(to, str) or (to != MANAGERS and to not in roles):
        problems.append(f"{where}.to: expected a role ({', '.join(roles)}) or {MANAGERS}, got {to!r}")
    after = timedelta(0)
    if raw.get("after") is not None:
        try:
            after = parse_duration(raw["after"])
        except ValueError as exc:
            problems.append(f"{where}.after: {exc}")
    release = raw.get("release", False)
    if not isinstance(release, bool):
        problems.append(f"{where}.release: expected true or false, got {release!r}")
        release = False
    return Escalation(to=str(to), after=after, release=release)
