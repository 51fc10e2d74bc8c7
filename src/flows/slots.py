"""Go-live slots in the team's calendar time zone, and the peak-traffic hours (客流高峰时段)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from ecomflow.engine.definitions.current import get_definitions


def calendar_zone() -> ZoneInfo:
    """Return the time zone of flows.yaml's calendar (Asia/Shanghai)."""
    return ZoneInfo(get_definitions().timezone)


def slot_time(value: str) -> datetime:
    """Return a form's go-live slot as an aware datetime; a naive one is calendar time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=calendar_zone())


def in_peak_hours(moment: datetime, *, peak_hours: list[str]) -> bool:
    """Tell whether a time falls in one of the peak hours (local time; the instance's `rules.peak_hours`)."""
    local = moment.astimezone(calendar_zone()).time()
    for slot in peak_hours:
        start, end = (time.fromisoformat(part) for part in slot.split("-"))
        if start <= local < end:
            return True
    return False
