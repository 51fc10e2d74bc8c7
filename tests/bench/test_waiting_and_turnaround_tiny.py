"""Benchmarks (a) and (d) at a tiny size: each runs end to end and reports every figure.

No timed assertions: the figures' values depend on the machine; their presence does not.
"""

from __future__ import annotations

import pytest

from bench import turnaround, waiting_memory
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def waiting() -> dict:
    return run_main_unrecorded(waiting_memory, ["--db", BACKEND, "--n", "2", "--n", "4", "--settle", "0.5"])


@pytest.fixture(scope="module")
def turned() -> dict:
    return run_main_unrecorded(turnaround, ["--db", BACKEND, "--steps", "2"])


class TestWaitingMemoryTiny:
    def test_every_checkpoint_has_all_its_returns_waiting(self, waiting: dict) -> None:
        assert [point["n"] for point in waiting["checkpoints"]] == [2, 4]
        assert [point["started_now"] for point in waiting["checkpoints"]] == [2, 2]
        assert [point["runs_paused"] for point in waiting["checkpoints"]] == [2, 4]
        assert all(point["first_task_latency"]["n"] == 2 for point in waiting["checkpoints"])

    def test_measures_memory_and_sizes_of_each_process(self, waiting: dict) -> None:
        for snapshot in (waiting["baseline"], *(p["snapshot"] for p in waiting["checkpoints"])):
            assert set(snapshot["memory"]) == {"worker", "prefect", "api"}
            assert all(memory["rss_mb"] > 0 for memory in snapshot["memory"].values())
            assert snapshot["db_bytes"] > 0 and snapshot["prefect_db_bytes"] > 0
        assert waiting["breakdown_n"] == 4 and waiting["breakdown"]

    def test_table_compares_the_last_checkpoint_with_the_first(self, waiting: dict) -> None:
        rows = dict(waiting_memory.table(waiting))
        assert rows["waiting returns"] == "0 → 2 → 4"
        assert rows["worker RSS at 4 vs at 2 waiting"].endswith("%")

    def test_entry_compares_the_last_checkpoint_with_the_first(self, waiting: dict) -> None:
        entry = waiting_memory.entry(waiting, setting=BACKEND)
        assert entry.ratio.startswith("RSS at 4 vs 2 waiting (goal ≤ +20 % for worker and Prefect server): worker ")
        assert dict(entry.rows)["waiting returns"] == "0 → 2 → 4"


class TestTurnaroundTiny:
    def test_times_each_step_and_the_start(self, turned: dict) -> None:
        assert turned["task_to_next_task"]["n"] == 2
        assert turned["first_task"]["n"] >= 1
        assert turned["prefect_runs_completed"] >= 1

    def test_table_has_a_row_per_figure(self, turned: dict) -> None:
        rows = dict(turnaround.table(turned))
        assert rows["complete 200 → next task in inbox (all task→task steps)"].startswith("p50 ")
        assert float(rows["worker CPU-s per flow execution (initial run + each resume)"]) > 0

    def test_entry_measures_against_the_goal(self, turned: dict) -> None:
        entry = turnaround.entry(turned, setting=BACKEND)
        assert entry.key == f"turnaround | {BACKEND}"
        assert entry.ratio.startswith("against the goal (p50 < 1 s, p95 < 2 s): p50 ")
        assert dict(entry.rows)["complete 200 → next task in inbox (all task→task steps)"].endswith("s (n=2)")
