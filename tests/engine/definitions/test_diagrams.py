"""Process maps drawn from the definition: every process shows every step, its loops, conditions, lanes and children."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.diagram_layout import layout_process
from ecomflow.engine.definitions.diagram_svg import DiagramText, StepMark, render_svg
from ecomflow.engine.definitions.processes import ProcessSpec
from tests.factories import edited_definitions, step_of

pytestmark = pytest.mark.db_independent

SVG_NS = "{http://www.w3.org/2000/svg}"
DEFINITIONS = get_definitions()
PROCESSES = sorted(DEFINITIONS.processes)
WORDS = {
    **{word: f"<{word}>" for word in ("start", "end", "when", "otherwise", "reject", "due", "approves", "at", "each")},
    **{f"kind.{kind}": f"<{kind}>" for kind in ("human", "approval", "auto", "timer", "parallel", "child")},
}


def text_in(lang: str) -> DiagramText:
    return DiagramText(
        lang=lang,
        words=WORDS,
        role_names={key: role.label.en for key, role in DEFINITIONS.roles.items()},
        process_names={key: spec.label.en for key, spec in DEFINITIONS.processes.items()},
    )


def draw(spec: ProcessSpec, **kwargs: Any) -> ET.Element:
    """Draw the map and parse it: the SVG must be well-formed XML."""
    return ET.fromstring(render_svg(layout_process(spec), text=text_in("en"), title=spec.key, **kwargs))


def steps_drawn(svg: ET.Element) -> list[str]:
    return [g.get("data-step") for g in svg.iter(f"{SVG_NS}g") if g.get("data-step")]


def edges_drawn(svg: ET.Element, kind: str) -> set[tuple[str, str]]:
    return {(g.get("data-from"), g.get("data-to")) for g in svg.iter(f"{SVG_NS}g") if g.get("data-edge") == kind}


def texts(element: ET.Element) -> str:
    """Return the visible text: a cut text's full wording sits in its <title> tooltip, not counted here."""
    return " ".join("".join([t.text or "", *(child.tail or "" for child in t)]) for t in element.iter(f"{SVG_NS}text"))


def test_there_are_twelve_processes_the_daily_report_order_fulfilment_and_review_follow_up() -> None:
    assert len(PROCESSES) == 15
    assert {"daily_report", "order_fulfilment", "review_follow_up"} <= set(PROCESSES)


@pytest.mark.parametrize("key", PROCESSES)
class TestEveryProcess:
    def test_its_map_shows_every_step_of_its_definition_in_order_with_kind_and_role(self, key: str) -> None:
        spec = DEFINITIONS.process(key)
        svg = draw(spec)
        assert steps_drawn(svg) == [step.key for step in spec.steps]
        for step in spec.steps:
            group = next(g for g in svg.iter(f"{SVG_NS}g") if g.get("data-step") == step.key)
            assert group.get("data-kind") == step.kind
            shown = texts(group)
            assert step.label.en[:12] in shown, step.key
            assert f"<{step.kind}>" in shown
            if step.role:
                assert DEFINITIONS.roles[step.role].label.en in shown

    def test_the_flow_runs_from_start_through_each_step_to_the_end(self, key: str) -> None:
        keys = ["start", *[step.key for step in DEFINITIONS.process(key).steps], "end"]
        assert edges_drawn(draw(DEFINITIONS.process(key)), "next") == set(itertools.pairwise(keys))

    def test_every_reject_loop_and_every_condition_is_drawn(self, key: str) -> None:
        spec = DEFINITIONS.process(key)
        svg = draw(spec)
        assert edges_drawn(svg, "reject") == {(s.key, s.reject_to) for s in spec.steps if s.reject_to}
        assert {source for source, _ in edges_drawn(svg, "skip")} == {s.key for s in spec.steps if s.when}

    def test_parallel_steps_have_a_lane_per_role_and_child_steps_name_their_process(self, key: str) -> None:
        spec = DEFINITIONS.process(key)
        svg = draw(spec)
        for step in spec.steps:
            group = next(g for g in svg.iter(f"{SVG_NS}g") if g.get("data-step") == step.key)
            lanes = [g.get("data-lane") for g in group.iter(f"{SVG_NS}g") if g.get("data-lane")]
            assert lanes == list(step.roles if step.kind == "parallel" else ())
            if step.kind == "child":
                assert DEFINITIONS.process(step.process).label.en[:10] in texts(group)
            if step.kind == "timer":
                assert f"<at> {step.at}"[:20] in texts(group)

    def test_it_carries_no_script_and_no_style_a_strict_csp_would_block(self, key: str) -> None:
        svg = draw(DEFINITIONS.process(key))
        for element in svg.iter():
            assert element.tag not in (f"{SVG_NS}script", f"{SVG_NS}style", f"{SVG_NS}foreignObject")
            assert "style" not in element.attrib and not any(name.startswith("on") for name in element.attrib)


class TestLayout:
    def test_boxes_never_overlap_and_lie_inside_the_map(self) -> None:
        for key in PROCESSES:
            layout = layout_process(DEFINITIONS.process(key))
            for above, below in itertools.pairwise(layout.boxes):
                assert above.bottom < below.y, key
            assert all(b.x >= 0 and b.x + b.w <= layout.width and b.bottom <= layout.height for b in layout.boxes)

    def test_overlapping_reject_loops_get_tracks_of_their_own(self) -> None:
        def second_loop(raw: dict[str, Any]) -> None:
            # A second reject spanning the first one: design and review loop, and the owner's back to the brief.
            step_of(raw, "page_design", "owner_signoff")["reject_to"] = "brief"

        layout = layout_process(edited_definitions(second_loop).process("page_design"))
        loops = [edge for edge in layout.edges if edge.kind == "reject"]
        assert len(loops) == 2
        assert len({edge.points[1][0] for edge in loops}) == 2  # each on its own vertical track

    def test_notes_make_room_in_their_box(self) -> None:
        spec = DEFINITIONS.process("returns_exchange")
        plain = layout_process(spec).box("inspect")
        noted = layout_process(spec, note_lines={"inspect": 2}).box("inspect")
        assert noted.h > plain.h


class TestMarks:
    def test_a_case_s_states_badges_and_notes_are_drawn_on_its_steps(self) -> None:
        spec = DEFINITIONS.process("product_photo_shoot")
        marks = {
            "request": StepMark(state="done"),
            "shoot": StepMark(state="done", badge="x2"),
            "retouch": StepMark(state="current", notes=(("held by wu since 10:00", "/ui/tasks/t-1"),)),
            "sample_handover": StepMark(state="done"),
        }
        layout = layout_process(spec, note_lines={"retouch": 1})
        svg = ET.fromstring(render_svg(layout, text=text_in("en"), title="x", marks=marks))
        states = {g.get("data-step"): g.get("data-state") for g in svg.iter(f"{SVG_NS}g") if g.get("data-step")}
        assert states["retouch"] == "current" and states["shoot"] == "done" and states["review"] == ""
        retouch = next(g for g in svg.iter(f"{SVG_NS}g") if g.get("data-step") == "retouch")
        assert "held by wu since 10:00" in texts(retouch)
        assert [a.get("href") for a in retouch.iter(f"{SVG_NS}a")] == ["/ui/tasks/t-1"]
        shoot = next(g for g in svg.iter(f"{SVG_NS}g") if g.get("data-step") == "shoot")
        assert "x2" in texts(shoot)

    def test_text_is_escaped(self) -> None:
        spec = DEFINITIONS.process("returns_exchange")
        marks = {"inspect": StepMark(state="current", notes=(('<script>alert("x")</script> & co', None),))}
        layout = layout_process(spec, note_lines={"inspect": 1})
        drawn = render_svg(layout, text=text_in("en"), title="</title><script>", marks=marks)
        svg = ET.fromstring(drawn)
        assert not list(svg.iter(f"{SVG_NS}script")) and "<script>" not in drawn

    def test_the_language_picks_the_labels(self) -> None:
        spec = DEFINITIONS.process("returns_exchange")
        zh = texts(ET.fromstring(render_svg(layout_process(spec), text=text_in("zh"), title="x")))
        assert spec.step("inspect").label.zh in zh and spec.step("inspect").label.en not in zh
