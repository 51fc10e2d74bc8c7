"""Process maps for the pages and the API: the map of a process, one case's path on it, and the heat view."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup

from ecomflow.api.web.i18n import Translator
from ecomflow.api.web.labels import role_title
from ecomflow.api.web.rendering import HOME, local_time
from ecomflow.engine.definitions.diagram_layout import layout_process
from ecomflow.engine.definitions.diagram_svg import DiagramText, StepMark, render_svg
from ecomflow.engine.definitions.instance_path import InstancePath, StepOnPath
from ecomflow.engine.definitions.processes import Definitions, ProcessSpec
from ecomflow.engine.reports.step_heat import StepHeat

__all__ = ["heat_svg", "instance_path_svg", "process_map_svg", "wait_text"]

_WORDS = ("start", "end", "when", "otherwise", "reject", "due", "approves", "at", "each")
_KINDS = ("human", "approval", "auto", "timer", "parallel", "child")
# Cool to hot: under half the due time, within it, past it, past twice it.
HEAT_COLOURS = ("#c8e6c9", "#fff59d", "#ffcc80", "#ef9a9a")


def diagram_text(t: Translator, definitions: Definitions) -> DiagramText:
    """Return the words and names a map is drawn with, in the page's language."""
    words = {word: t(f"map.{word}") for word in _WORDS} | {f"kind.{k}": t(f"map.kind.{k}") for k in _KINDS}
    return DiagramText(
        lang=t.lang,
        words=words,
        role_names={key: role_title(definitions, t, key) for key in definitions.roles},
        process_names={key: t.label(spec.label) for key, spec in definitions.processes.items()},
    )


def process_map_svg(spec: ProcessSpec, *, t: Translator, definitions: Definitions, id_prefix: str = "map") -> Markup:
    """Return the map of a process; a child step links to its child process's map."""
    links = {s.key: f"{HOME}/processes/{s.process}" for s in spec.steps if s.kind == "child" and s.process}
    svg = render_svg(
        layout_process(spec),
        text=diagram_text(t, definitions),
        title=t("map.title", process=t.label(spec.label)),
        step_links=links,
        id_prefix=id_prefix,
    )
    return Markup(svg)  # render_svg escapes every text and attribute it writes


def instance_path_svg(
    spec: ProcessSpec,
    path: InstancePath,
    *,
    t: Translator,
    definitions: Definitions,
    zone: ZoneInfo,
    title: str,
    visible: Collection[str],
) -> Markup:
    """Return the map of the instance's version with its path on it: done, current (who, since when), skipped.

    `visible` holds the ids of the tasks and child instances the viewer may see: only those are named and linked.
    """
    marks = {
        step.key: _path_mark(step, t=t, definitions=definitions, zone=zone, visible=visible) for step in path.steps
    }
    layout = layout_process(spec, note_lines={key: len(mark.notes) for key, mark in marks.items()})
    svg = render_svg(layout, text=diagram_text(t, definitions), title=title, marks=marks, id_prefix="path")
    return Markup(svg)  # render_svg escapes every text and attribute it writes


def heat_svg(spec: ProcessSpec, heat: Mapping[str, StepHeat], *, t: Translator, definitions: Definitions) -> Markup:
    """Return the heat view: per step, the open count and median wait as a note, the fill coloured by the wait."""
    longest = max((h.median_wait for h in heat.values()), default=timedelta(0))
    marks = {}
    for step in spec.steps:
        measured = heat.get(step.key)
        if measured is None:
            marks[step.key] = StepMark(fill="#ffffff")  # nothing waits here: plain, so the heat stands out
            continue
        note = t("map.heat_note", open=measured.open, wait=wait_text(measured.median_wait, t))
        marks[step.key] = StepMark(
            notes=((note, None),), fill=heat_colour(measured.median_wait, due=step.due, longest=longest)
        )
    layout = layout_process(spec, note_lines={key: len(mark.notes) for key, mark in marks.items()})
    title = t("map.heat_title", process=t.label(spec.label))
    svg = render_svg(layout, text=diagram_text(t, definitions), title=title, marks=marks, id_prefix="heat")
    return Markup(svg)  # render_svg escapes every text and attribute it writes


def heat_colour(wait: timedelta, *, due: timedelta | None, longest: timedelta) -> str:
    """Return the heat colour of a median wait: against the step's due time, else against the longest wait."""
    ratio = wait / due if due else wait / longest if longest else 0.0
    return HEAT_COLOURS[0 if ratio < 0.5 else 1 if ratio < 1 else 2 if ratio < 2 else 3]


def wait_text(wait: timedelta, t: Translator) -> str:
    """Return a wait in the largest whole unit that fits: days, hours or minutes."""
    minutes = int(wait.total_seconds() // 60)
    if minutes >= 1440:
        return t("map.duration.days", n=minutes // 1440)
    if minutes >= 60:
        return t("map.duration.hours", n=minutes // 60)
    return t("map.duration.minutes", n=minutes)


def _path_mark(
    step: StepOnPath, *, t: Translator, definitions: Definitions, zone: ZoneInfo, visible: Collection[str]
) -> StepMark:
    notes: list[tuple[str, str | None]] = []
    for holder in step.holders:
        since = local_time(holder.since, zone)
        if holder.task_id not in visible:
            # Who holds a task the viewer may not see stays theirs to know, as in the instance's task list.
            notes.append((t("map.held", since=since), None))
        elif holder.assignee:
            notes.append((t("map.held_by", user=holder.assignee, since=since), f"{HOME}/tasks/{holder.task_id}"))
        else:
            role = role_title(definitions, t, holder.role)
            notes.append((t("map.in_queue", role=role, since=since), f"{HOME}/tasks/{holder.task_id}"))
    if step.state == "current" and step.waits_until is not None:
        notes.append((t("map.waits_until", at=local_time(step.waits_until, zone)), None))
    for child in step.children:
        state = t.get(f"instance_state.{child.state}", child.state)
        text = t("map.child", business_key=child.business_key, state=state)
        notes.append((text, f"{HOME}/instances/{child.id}" if child.id in visible else None))
    return StepMark(
        state=step.state,
        badge=t("map.rounds", n=step.rounds) if step.rounds > 1 else "",
        notes=tuple(notes),
        lane_states=step.lane_states,
    )
