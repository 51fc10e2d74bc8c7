"""Timed loops, nearest-rank percentiles, and the one summary every benchmark reports durations with."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

_DIGITS = {"s": 3, "ms": 1}


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def summarize(values: Sequence[float], *, scale: float = 1.0) -> dict[str, float]:
    """Return n, p50, p95, p99, max, min and mean of the values times scale (1000 turns seconds into ms)."""
    if not values:
        return {"n": 0}
    scaled = [v * scale for v in values]
    figures = {f"p{q}": percentile(scaled, q) for q in (50, 95, 99)}
    figures.update(max=max(scaled), min=min(scaled), mean=sum(scaled) / len(scaled))
    return {"n": len(scaled), **{key: round(value, 3) for key, value in figures.items()}}


def format_summary(
    summary: dict[str, float],
    *,
    unit: str,
    keys: Sequence[str] = ("p50", "p95", "p99", "max"),
    digits: int | None = None,
) -> str:
    """Return 'p50 1.2 · p95 3.4 ms (n=200)' for the keys asked, or '—' for an empty summary."""
    if not summary.get("n"):
        return "—"
    places = _DIGITS.get(unit, 2) if digits is None else digits
    return " · ".join(f"{key} {summary[key]:.{places}f}" for key in keys) + f" {unit} (n={summary['n']})"


def time_calls(call: Callable[[], Any], n: int, *, warmup: int = 3) -> list[float]:
    """Call `warmup` times untimed, then n times; return each timed call's seconds."""
    for _ in range(warmup):
        call()
    durations = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def rate(durations: Sequence[float]) -> float:
    """Return how many of these one after another fit in a second (0 for none)."""
    return round(len(durations) / sum(durations), 1) if durations else 0.0
