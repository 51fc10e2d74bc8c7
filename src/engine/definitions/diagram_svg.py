"""Draw a process map (diagram_layout.Layout) as SVG text, in one language, with marks for a case or the heat view.

Pure: the words, role and process names come in (`DiagramText`), and so does what to show on each
step (`StepMark`: done/current/skipped/pending, a badge, note lines, a heat colour, a link).
Colours are presentation attributes, never `style`, so the SVG may sit inline in a page under a
strict Content-Security-Policy. Every step's group carries `data-step` and `data-state`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from xml.sax.saxutils import escape, quoteattr

from ecomflow.engine.definitions.diagram_layout import (
    BOX_H,
    BOX_W,
    LANE_H,
    NOTE_H,
    POINT_R,
    SKIP_OFFSET,
    Box,
    Edge,
    Layout,
)
from ecomflow.engine.definitions.forms import Label
from ecomflow.engine.definitions.processes import StepSpec

__all__ = ["KIND_COLOURS", "DiagramText", "StepMark", "render_svg"]

FONT = "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
# (fill, stroke) per step kind.
KIND_COLOURS = {
    "human": ("#eaf2fb", "#4a7fb5"),
    "approval": ("#fff3df", "#c98a1b"),
    "auto": ("#edf6ee", "#4f8f5b"),
    "timer": ("#f2edf9", "#7c5fb0"),
    "parallel": ("#e6f5f6", "#2f8f99"),
    "child": ("#f4f4f4", "#666666"),
}
# (stroke, stroke width, dash) per state of a case's step.
_STATE_STROKES = {
    "done": ("#2e7d32", "2", ""),
    "current": ("#1565c0", "3.5", ""),
    "skipped": ("#b0b0b0", "1.2", "5 4"),
    "pending": ("#b0b0b0", "1.2", ""),
}
_STATE_GLYPHS = {"done": "✓", "current": "●", "skipped": "–", "pending": ""}
_TEXT, _MUTED = "#1f2933", "#5f6b76"
_CONDITION_PX = BOX_W / 2 + SKIP_OFFSET - 16  # from right of the flow line to the bypass track


@dataclass(frozen=True)
class DiagramText:
    """The words of a map in one language: `words` by key (kind.human, reject, when …), names of roles and processes."""

    lang: str
    words: Mapping[str, str]
    role_names: Mapping[str, str]
    process_names: Mapping[str, str]

    def label(self, label: Label) -> str:
        """Return a flows.yaml label in this language."""
        return label.zh if self.lang == "zh" else label.en


@dataclass(frozen=True)
class StepMark:
    """What to show on one step: a state, a badge (rounds), note lines (text, link), a heat colour, a link."""

    state: str | None = None
    badge: str = ""
    notes: tuple[tuple[str, str | None], ...] = ()
    fill: str | None = None
    href: str | None = None
    lane_states: Mapping[str, str] = field(default_factory=dict)


def render_svg(
    layout: Layout,
    *,
    text: DiagramText,
    title: str,
    marks: Mapping[str, StepMark] | None = None,
    step_links: Mapping[str, str] | None = None,
    id_prefix: str = "map",
) -> str:
    """Return the SVG document of the map; `step_links` link a step's box (a child step to its process map)."""
    marks, step_links = marks or {}, step_links or {}
    arrow, grey_arrow = f"{id_prefix}-arrow", f"{id_prefix}-arrow-grey"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="process-map" viewBox="0 0 {layout.width:.0f} '
        f'{layout.height:.0f}" width="{layout.width:.0f}" height="{layout.height:.0f}" role="img" '
        f'aria-labelledby="{id_prefix}-title" data-process={quoteattr(layout.process_key)} '
        f"font-family={quoteattr(FONT)}>",
        f'<title id="{id_prefix}-title">{escape(title)}</title>',
        "<defs>",
        _marker(arrow, "#4b5563"),
        _marker(grey_arrow, "#9aa5b1"),
        "</defs>",
        _point(layout.start, text.words["start"], filled=False),
        _point(layout.end, text.words["end"], filled=True),
    ]
    parts += [_edge(edge, text, arrow, grey_arrow) for edge in layout.edges]
    titles = {box.step.key: text.label(box.step.label) for box in layout.boxes}
    for box in layout.boxes:
        mark = marks.get(box.step.key, StepMark())
        parts.append(_box(box, text, titles, mark, step_links.get(box.step.key)))
    parts.append("</svg>")
    return "\n".join(parts)


def _marker(marker_id: str, colour: str) -> str:
    return (
        f'<marker id="{marker_id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
    )


def _point(at: tuple[float, float], name: str, *, filled: bool) -> str:
    x, y = at
    fill = "#4b5563" if filled else "#ffffff"
    return (
        f'<g class="map-point"><circle cx="{x:.1f}" cy="{y:.1f}" r="{POINT_R}" fill="{fill}" stroke="#4b5563" '
        f'stroke-width="2"/><text x="{x + POINT_R + 6:.1f}" y="{y + 4:.1f}" font-size="12" fill="{_MUTED}">'
        f"{escape(name)}</text></g>"
    )


def _edge(edge: Edge, text: DiagramText, arrow: str, grey_arrow: str) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in edge.points)
    dash = ' stroke-dasharray="6 4"' if edge.kind == "skip" else ""
    colour, marker = ("#9aa5b1", grey_arrow) if edge.kind == "skip" else ("#4b5563", arrow)
    if edge.kind == "reject":
        colour = KIND_COLOURS["approval"][1]
    line = (
        f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash} '
        f'marker-end="url(#{marker})"/>'
    )
    label = _edge_label(edge, text)
    return (
        f'<g class="edge edge-{edge.kind}" data-edge={quoteattr(edge.kind)} data-from={quoteattr(edge.source)} '
        f"data-to={quoteattr(edge.target)}>{line}{label}</g>"
    )


def _edge_label(edge: Edge, text: DiagramText) -> str:
    if edge.kind == "next" and edge.label:
        (x, y0), (_, y1) = edge.points[0], edge.points[-1]
        words = f"◇ {text.words['when']} {edge.label}"
        # Two lines between the flow and the bypass track: the full condition is the tooltip.
        first, rest = _split(words, _CONDITION_PX, 11)
        lines = [first, _fit(rest, _CONDITION_PX, 11)] if rest else [first]
        top = (y0 + y1) / 2 - 7 * (len(lines) - 1) + 4
        return "".join(
            _text(x + 8, top + 14 * i, line, size=11, fill="#8a5a00", full=words) for i, line in enumerate(lines)
        )
    if edge.kind == "skip":
        (_, y0), (x, y1) = edge.points[1], edge.points[2]
        return _text(x + 5, (y0 + y1) / 2 + 4, text.words["otherwise"], size=11, fill=_MUTED)
    if edge.kind == "reject":
        (_, y0), (x, y1) = edge.points[1], edge.points[2]
        y = (y0 + y1) / 2
        return (
            f'<text x="{x - 4:.1f}" y="{y:.1f}" font-size="11" fill="{KIND_COLOURS["approval"][1]}" '
            f'text-anchor="middle" transform="rotate(-90 {x - 4:.1f} {y:.1f})">{escape(text.words["reject"])}</text>'
        )
    return ""


def _split(content: str, max_px: float, size: int) -> tuple[str, str]:
    """Return the longest head of the text that fits max_px, and the rest."""
    for end in range(len(content), 0, -1):
        if _width(content[:end], size) <= max_px:
            space = content.rfind(" ", 0, end + 1)
            # Break at a space when there is one in the second half of the line; CJK text breaks anywhere.
            cut = space if end < len(content) and space > end // 2 else end
            return content[:cut], content[cut:].lstrip()
    return "", content


def _box(box: Box, text: DiagramText, titles: Mapping[str, str], mark: StepMark, link: str | None) -> str:
    step = box.step
    fill, stroke = KIND_COLOURS[step.kind]
    width, dash = "1.5", ""
    if mark.state in _STATE_STROKES:
        stroke, width, dash = _STATE_STROKES[mark.state]
    fill = mark.fill or ("#dcecff" if mark.state == "current" else "#fafafa" if mark.state == "skipped" else fill)
    ink = "#8a939c" if mark.state == "skipped" else _TEXT
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    state = mark.state or ""
    parts = [
        f'<g class="step step-{step.kind}{" state-" + state if state else ""}" data-step={quoteattr(step.key)} '
        f"data-kind={quoteattr(step.kind)} data-state={quoteattr(state)}>",
        f"<title>{escape(_tooltip(step, text, titles))}</title>",
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="8" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"{dashed}/>',
    ]
    if step.kind == "child":
        parts.append(
            f'<rect x="{box.x + 4:.1f}" y="{box.y + 4:.1f}" width="{box.w - 8:.1f}" height="{box.h - 8:.1f}" rx="6" '
            f'fill="none" stroke="{stroke}" stroke-width="1"/>'
        )
    left, inner = box.x + 12, box.w - 24
    parts.append(_text(left, box.y + 18, _fit(_kind_line(step, text), inner - 40, 11), size=11, fill=_MUTED))
    title = text.label(step.label)
    parts.append(_text(left, box.y + 38, _fit(title, inner, 14), size=14, fill=ink, weight="600", full=title))
    detail = _detail_line(step, text, titles)
    if detail:
        parts.append(_text(left, box.y + 56, _fit(detail, inner, 11), size=11, fill=_MUTED, full=detail))
    glyph = " ".join(g for g in (_STATE_GLYPHS.get(state, ""), mark.badge) if g)
    if glyph:
        parts.append(_text(box.x + box.w - 10, box.y + 18, glyph, size=12, fill=stroke, weight="600", anchor="end"))
    if box.lanes:
        parts.append(_lanes(box, text, mark))
    top = box.y + BOX_H + (LANE_H if box.lanes else 0)
    for index, (note, href) in enumerate(mark.notes):
        line = _text(left, top + NOTE_H * index + 4, _fit(note, inner, 11), size=11, fill=_TEXT, full=note)
        parts.append(f"<a href={quoteattr(href)}>{line}</a>" if href else line)
    parts.append("</g>")
    group = "".join(parts)
    # Links do not nest: a box whose notes link somewhere (a case's children) is not a link itself.
    href = None if any(h for _, h in mark.notes) else mark.href or link
    return f'<a href={quoteattr(href)} class="step-link">{group}</a>' if href else group


def _lanes(box: Box, text: DiagramText, mark: StepMark) -> str:
    width = (box.w - 24 - 6 * (len(box.lanes) - 1)) / len(box.lanes)
    parts = []
    for index, role in enumerate(box.lanes):
        x = box.x + 12 + index * (width + 6)
        state = mark.lane_states.get(role, "")
        stroke = _STATE_STROKES[state][0] if state in _STATE_STROKES else KIND_COLOURS["parallel"][1]
        fill = "#dcecff" if state == "current" else "#ffffff"
        name = text.role_names.get(role, role)
        parts.append(
            f'<g class="lane" data-lane={quoteattr(role)} data-state={quoteattr(state)}><rect x="{x:.1f}" '
            f'y="{box.y + BOX_H - 6:.1f}" width="{width:.1f}" height="{LANE_H - 4}" rx="4" fill="{fill}" '
            f'stroke="{stroke}"/>'
            + _text(x + 5, box.y + BOX_H + 12, _fit(name, width - 10, 11), size=11, fill=_TEXT, full=name)
            + "</g>"
        )
    return "".join(parts)


def _kind_line(step: StepSpec, text: DiagramText) -> str:
    kind = text.words[f"kind.{step.kind}"]
    if step.role:
        return f"{kind} · {text.role_names.get(step.role, step.role)}"
    return kind


def _detail_line(step: StepSpec, text: DiagramText, titles: Mapping[str, str]) -> str:
    words = text.words
    parts = []
    if step.due:
        parts.append(f"{words['due']} {_duration(step.due)}")
    if step.approves:
        parts.append(f"{words['approves']} {titles.get(step.approves, step.approves)}")
    if step.kind == "timer" and step.at:
        parts.append(f"⏱ {words['at']} {step.at}")
    if step.kind == "child" and step.process:
        each = f"{words['each']} {step.each} " if step.each else ""
        parts.append(f"{each}→ {text.process_names.get(step.process, step.process)}")
    return " · ".join(parts)


def _tooltip(step: StepSpec, text: DiagramText, titles: Mapping[str, str]) -> str:
    lines = [f"{text.label(step.label)} ({step.key})", _kind_line(step, text)]
    for extra in (_detail_line(step, text, titles), f"{text.words['when']} {step.when}" if step.when else ""):
        if extra:
            lines.append(extra)
    return "\n".join(lines)


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: int,
    fill: str,
    weight: str = "",
    anchor: str = "",
    full: str | None = None,
) -> str:
    bold = f' font-weight="{weight}"' if weight else ""
    end = f' text-anchor="{anchor}"' if anchor else ""
    hint = f"<title>{escape(full)}</title>" if full is not None and full != content else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"{bold}{end}>{hint}{escape(content)}</text>'


def _fit(content: str, max_px: float, size: int) -> str:
    """Return the text cut with an ellipsis to fit max_px at this font size (CJK counted a full em wide)."""
    if _width(content, size) <= max_px:
        return content
    while content and _width(content + "…", size) > max_px:
        content = content[:-1]
    return content + "…"


def _width(content: str, size: int) -> float:
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.58 for c in content)
