"""Horizontal bar charts, drawn as inline SVG by templates/_charts.html (no script, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass

CHART_LABEL_CHARS = 12


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, its length, and the part of it drawn in the alarm colour."""

    label: str
    value: float
    text: str
    part: float = 0.0

    @property
    def short_label(self) -> str:
        """Return the label cut to fit beside the bar (the full one is in the bar's title)."""
        return self.label if len(self.label) <= CHART_LABEL_CHARS else self.label[: CHART_LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart, drawn as inline SVG."""

    title: str
    bars: list[Bar]
    scale: float

    @classmethod
    def of(cls, title: str, bars: list[Bar], *, scale: float | None = None) -> BarChart:
        """Make a chart whose longest bar fills the width, unless a scale (1.0 for rates) is given."""
        return cls(title=title, bars=bars, scale=scale or max([b.value for b in bars] + [1]))
