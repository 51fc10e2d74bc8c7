"""Benchmarks (b) and (c) at a tiny size: both sides run end to end, do human steps and report every figure.

No timed assertions: the figures' values depend on the machine; their presence, and that work was done, do not.
The bare side runs in the SQLite lane only: its Prefect server is on SQLite in both lanes (the command names no
--prefect-db), so the PostgreSQL lane ran the same bare side again, each execution a new ~5 CPU-s process.
"""

from __future__ import annotations

import pytest

from bench import throughput
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

# Two bare runs in flight: each execution of a bare run is a new Python process (~5 CPU-s). The drain lets
# the bare side's last resumes show their next pause (it ends as soon as every accepted step is done); it is
# long because a 2-core machine running both lanes at once (load 15) gave the bare side 0 steps in 30 s.
ARGV = [
    "--db",
    BACKEND,
    "--staff",
    "2",
    "--duration",
    "12",
    "--warmup",
    "2",
    "--in-flight",
    "2",
    "--drain",
    "180",
    # ... and, when it showed no task within the window at all, the staff keep on until one step was done.
    "--min-steps",
    "1",
    "--no-profile",
    *(["--compare-bare"] if BACKEND == "sqlite" else []),
]
SIDES = ("ecomflow", "bare") if BACKEND == "sqlite" else ("ecomflow",)
with_bare = pytest.mark.skipif(BACKEND != "sqlite", reason="the bare side runs in the SQLite lane (see above)")


def _row(side: str, label: str) -> str:
    """Name a row as the report does: prefixed by its side when both sides are side by side."""
    return f"{side}: {label}" if len(SIDES) > 1 else label


@pytest.fixture(scope="module")
def run() -> tuple[dict, list[tuple[str, str]]]:
    results = run_main_unrecorded(throughput, ARGV)
    return results, throughput.table(results)


@pytest.mark.e2e
class TestThroughputTiny:
    def test_runs_each_side(self, run) -> None:
        assert set(run[0]) == set(SIDES)

    @with_bare
    def test_runs_the_bare_side_with_our_server_settings(self, run) -> None:
        # Both Prefect servers run with ecomflow's settings: the comparison is of what runs the flows.
        assert run[0]["bare"]["stack_settings"]["server"] == "ecomflow"

    def test_people_did_human_steps_on_ecomflow(self, run) -> None:
        ours = run[0]["ecomflow"]
        assert ours["steps_done"] > 0 and ours["accepted"] > 0, ours["errors"]
        assert ours["steps_per_s"] > 0 and ours["turnaround"]["n"] > 0
        # The drain ends once every accepted complete shows its next task: each one is a step done, none lost.
        assert ours["not_done_after_drain"] == 0, ours["errors"]
        assert ours["steps_done_total"] == ours["completes_total"] >= ours["accepted"] > 0
        assert ours["steps_done_total"] >= ours["steps_done"]

    @with_bare
    def test_people_did_human_steps_on_bare_prefect(self, run) -> None:
        bare = run[0]["bare"]
        # A bare execution is a new process: its steps may all fall after the short window, not after the drain.
        assert 0 < bare["steps_done_total"] <= bare["completes_total"], bare["errors"]
        assert bare["steps_done_total"] >= bare["steps_done"]

    def test_measures_every_figure(self, run) -> None:
        for name, figures in run[0].items():
            assert figures["window_s"] > 0, name
            assert figures["accepted_per_s"] >= 0
            assert "n" in figures["turnaround"] and "n" in figures["start_to_first_point"]
            assert {"start", "end"} <= set(figures["in_pipeline"]) and {"start", "end"} <= set(
                figures["waiting_in_inbox"]
            )
            assert figures["pipeline"]["start"].keys() == figures["pipeline"]["end"].keys() != set()
            assert figures["cpu_s_per_step"].keys() == figures["cpu_s"].keys()
            # Both Prefect servers answered somebody during the window (the worker or the runner polls).
            assert sum(figures["prefect_calls"].values()) > 0, name

    def test_measures_each_process(self, run) -> None:
        assert set(run[0]["ecomflow"]["cpu_s"]) == {"worker", "prefect", "api"}
        if "bare" in run[0]:
            assert set(run[0]["bare"]["cpu_s"]) == {"runner", "prefect"}
        assert run[0]["ecomflow"]["pipeline"]["end"]["outbox undelivered"] >= 0
        # PostgreSQL's CPU is read when the stack's database is on it (and it served the staff in the window).
        postgres = run[0]["ecomflow"]["postgres_cpu_s"]
        assert postgres > 0 if BACKEND == "postgresql" else postgres is None
        rows = dict(run[1])
        assert any(name.startswith(_row("ecomflow", "PostgreSQL CPU-s")) for name in rows) == (BACKEND == "postgresql")

    def test_drives_with_valid_data(self, run) -> None:
        ours = run[0]["ecomflow"]
        assert ours["harness_calls"].get("GET /tasks", 0) > 0
        # (A loaded Prefect server on SQLite may answer 503 now and then: the harness retries those.)
        assert not [kind for kind in ours["refused"] if kind.startswith(("POST complete 422", "POST instances 422"))], (
            ours["errors"]
        )
        if "bare" in run[0]:
            bare_refused = run[0]["bare"]["refused"]
            assert not [kind for kind in bare_refused if "REJECT" in kind and "schema not found" not in kind]

    def test_report_has_every_row(self, run) -> None:
        names = [name for name, _ in run[1]]
        for side in SIDES:
            for row in (
                "human steps done/s (next task visible or instance ended)",
                "completes accepted/s",
                "complete 200 → next task visible (or ended)",
                "accepted, next not yet visible: window start → end",
                "Prefect API calls per done step (top endpoints)",
            ):
                assert _row(side, row) in names
        assert _row("ecomflow", "outbox undelivered: window start → end") in names
        assert all(value for _, value in run[1])

    @with_bare
    def test_report_puts_the_ratios_first(self, run) -> None:
        assert [name for name, _ in run[1]][:3] == [
            "ratio ecomflow / bare: human steps done/s",
            "ratio ecomflow / bare: turnaround p50",
            "ratio ecomflow / bare: CPU-s per done step (all processes)",
        ]

    def test_entry_keeps_ours_headline(self, run) -> None:
        entry = throughput.entry(run[0], setting=BACKEND)
        names = [name for name, _ in entry.rows]
        assert "ecomflow: human steps done/s" in names
        assert ("ecomflow: PostgreSQL CPU-s per done step (whole cluster)" in names) == (BACKEND == "postgresql")
        assert all(value for _, value in entry.rows)

    @with_bare
    def test_entry_puts_ours_beside_bare_prefect(self, run) -> None:
        entry = throughput.entry(run[0], setting=f"{BACKEND}, vs bare Prefect")
        assert entry.key == f"throughput | {BACKEND}, vs bare Prefect"
        assert entry.ratio.startswith("against bare Prefect (ecomflow / bare): human steps done/s ")
        names = [name for name, _ in entry.rows]
        assert "ecomflow: human steps done/s" in names and "bare: human steps done/s" in names
        assert all(value for _, value in entry.rows)
