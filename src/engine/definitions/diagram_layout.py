"""Lay a process out as a map: one box per step top to bottom, with its loops, skips and lanes (pure geometry).

The steps of flows.yaml run in their file order, so the map is a column: a start point, each
step's box, an end point. A step with `when` gets a dashed bypass on the right (the path when
its condition does not hold); an approval with `reject_to` a loop back on the left, one track
per loop so loops never cross each other's track; a parallel step a row of lanes, one per role.
Nothing here knows words or colours: diagram_svg.py draws the layout in a language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ecomflow.engine.definitions.processes import ProcessSpec, StepSpec

__all__ = ["Box", "Edge", "Layout", "layout_process"]

BOX_W = 320
BOX_H = 66  # three lines: kind and role, title, detail
LANE_H = 30  # the row of lanes of a parallel step
NOTE_H = 17  # one line of a note under the title (who holds it, how long it waits)
GAP = 34  # between two boxes
CONDITION_GAP = 64  # above a box with a condition: room for its label, two lines
LOOP_TRACK = 16  # between two reject loops' tracks
SKIP_OFFSET = 22  # right of the boxes: the bypass of a conditional step
POINT_R = 9  # the start and end points
MARGIN = 14
LOOP_LABEL = 14  # left of the outermost loop track: its label, written upwards


@dataclass(frozen=True)
class Box:
    """Where one step is drawn; `lanes` are the role keys of a parallel step, left to right."""

    step: StepSpec
    x: float
    y: float
    w: float
    h: float
    lanes: tuple[str, ...] = ()

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class Edge:
    """A line between steps: `next` (the flow), `skip` (a condition not met) or `reject` (back to rework)."""

    kind: str
    source: str  # a step key, or "start"
    target: str  # a step key, or "end"
    points: tuple[tuple[float, float], ...]
    label: str = ""  # the condition of a conditional step; the target of a reject loop


@dataclass(frozen=True)
class Layout:
    """A whole map: its size, the start and end points, boxes and edges."""

    process_key: str
    width: float
    height: float
    start: tuple[float, float]
    end: tuple[float, float]
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]

    def box(self, step_key: str) -> Box:
        """Return the box of a step."""
        return next(box for box in self.boxes if box.step.key == step_key)


def layout_process(spec: ProcessSpec, *, note_lines: Mapping[str, int] | None = None) -> Layout:
    """Return the map of a process; `note_lines` makes room for that many note lines in a step's box."""
    notes = note_lines or {}
    tracks = _loop_tracks(spec)
    box_x = MARGIN + LOOP_LABEL + LOOP_TRACK * (len(set(tracks.values())) + 1)
    cx = box_x + BOX_W / 2
    start = (cx, MARGIN + POINT_R)
    y = start[1] + POINT_R
    boxes = []
    for step in spec.steps:
        y += CONDITION_GAP if step.when else GAP
        lanes = step.roles if step.kind == "parallel" else ()
        height = BOX_H + (LANE_H if lanes else 0) + NOTE_H * notes.get(step.key, 0)
        boxes.append(Box(step=step, x=box_x, y=y, w=BOX_W, h=height, lanes=lanes))
        y += height
    end = (cx, y + GAP + POINT_R)
    edges = _flow_edges(boxes, start, end) + _skip_edges(boxes, start, end) + _reject_edges(boxes, tracks)
    width = box_x + BOX_W + SKIP_OFFSET + MARGIN + 70  # the skip track and its label
    return Layout(
        process_key=spec.key,
        width=width,
        height=end[1] + POINT_R + MARGIN,
        start=start,
        end=end,
        boxes=tuple(boxes),
        edges=tuple(edges),
    )


def _loop_tracks(spec: ProcessSpec) -> dict[str, int]:
    """Give each reject loop a track on the left: loops that overlap get different tracks, shorter ones inside."""
    order = {step.key: index for index, step in enumerate(spec.steps)}
    loops = sorted(
        ((order[s.reject_to], order[s.key], s.key) for s in spec.steps if s.reject_to in order),
        key=lambda loop: loop[1] - loop[0],
    )
    tracks: dict[str, int] = {}
    spans: list[tuple[int, int, int]] = []  # (top, bottom, track) placed so far
    for top, bottom, key in loops:
        track = 0
        while any(t == track and not (bottom < a or top > b) for a, b, t in spans):
            track += 1
        tracks[key] = track
        spans.append((top, bottom, track))
    return tracks


def _flow_edges(boxes: list[Box], start: tuple[float, float], end: tuple[float, float]) -> list[Edge]:
    edges = []
    previous_key, previous_y = "start", start[1] + POINT_R
    for box in boxes:
        edges.append(
            Edge(
                kind="next",
                source=previous_key,
                target=box.step.key,
                points=((box.cx, previous_y), (box.cx, box.y)),
                label=box.step.when or "",
            )
        )
        previous_key, previous_y = box.step.key, box.bottom
    edges.append(Edge(kind="next", source=previous_key, target="end", points=((end[0], previous_y), end)))
    return edges


def _skip_edges(boxes: list[Box], start: tuple[float, float], end: tuple[float, float]) -> list[Edge]:
    """Return the bypass of each conditional step: from just above it to just below it, on the right."""
    edges = []
    for index, box in enumerate(boxes):
        if not box.step.when:
            continue
        above = (boxes[index - 1].bottom if index else start[1] + POINT_R) + 10
        below = boxes[index + 1].y - 10 if index + 1 < len(boxes) else end[1] - POINT_R - 6
        side = box.x + box.w + SKIP_OFFSET
        target = boxes[index + 1].step.key if index + 1 < len(boxes) else "end"
        points = ((box.cx, above), (side, above), (side, below), (box.cx, below))
        edges.append(Edge(kind="skip", source=box.step.key, target=target, points=points))
    return edges


def _reject_edges(boxes: list[Box], tracks: Mapping[str, int]) -> list[Edge]:
    """Return each reject loop: from the approval's left side back to the left side of the step it returns to."""
    by_key = {box.step.key: box for box in boxes}
    edges = []
    for key, track in tracks.items():
        source, target = by_key[key], by_key[by_key[key].step.reject_to]
        x = source.x - LOOP_TRACK * (track + 1)
        y_from, y_to = source.y + BOX_H / 2, target.y + BOX_H / 2 + 8
        points = ((source.x, y_from), (x, y_from), (x, y_to), (target.x, y_to))
        edges.append(Edge(kind="reject", source=key, target=target.step.key, points=points, label=target.step.key))
    return edges
