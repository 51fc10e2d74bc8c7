"""Read flows.yaml's `wave` section: how long a wave (波次) takes orders and how many it holds at most."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ecomflow.engine.definitions.durations import parse_duration

__all__ = ["WaveSettings", "read_wave"]

_WAVE_KEYS = ("window", "max_orders")
# A warehouse prints waybills in batches; beyond this a wave's files get unwieldy for one print run.
_MAX_ORDERS_CEILING = 5000


@dataclass(frozen=True, kw_only=True)
class WaveSettings:
    """A location's open wave closes `window` after its first order or at `max_orders` orders, whichever first."""

    window: timedelta = timedelta(minutes=30)
    max_orders: int = 200


def read_wave(raw: Any, problems: list[str]) -> WaveSettings:
    """Return the wave settings (the defaults when the section is absent), appending every problem found."""
    if raw is None:
        return WaveSettings()
    if not isinstance(raw, Mapping):
        problems.append("wave: expected a mapping, e.g. {window: 30m, max_orders: 200}")
        return WaveSettings()
    for key in raw:
        if key not in _WAVE_KEYS:
            problems.append(f"wave: unknown key {key!r} (allowed: {', '.join(_WAVE_KEYS)})")
    settings = WaveSettings()
    window = settings.window
    if "window" in raw:
        try:
            window = parse_duration(raw["window"])
        except ValueError as exc:
            problems.append(f"wave.window: {exc}")
    max_orders = raw.get("max_orders", settings.max_orders)
    if not isinstance(max_orders, int) or isinstance(max_orders, bool) or not 1 <= max_orders <= _MAX_ORDERS_CEILING:
        problems.append(f"wave.max_orders: expected a whole number from 1 to {_MAX_ORDERS_CEILING}, got {max_orders!r}")
        max_orders = settings.max_orders
    return WaveSettings(window=window, max_orders=max_orders)
