"""bench.uploads at a tiny size: the API takes the uploads, and each figure stands beside its baseline."""

from __future__ import annotations

import pytest

from bench import uploads
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def figures() -> dict:
    return run_main_unrecorded(uploads, ["--db", BACKEND, "--images", "2", "--concurrent", "3", "--size-kb", "200"])


class TestUploadsTiny:
    def test_every_upload_was_timed_and_memory_sampled(self, figures: dict) -> None:
        assert figures["uploads"]["latency_ms"]["n"] == 2 and figures["uploads"]["per_s"] > 0
        memory = figures["memory"]
        assert memory["peak_mb"] >= memory["idle_mb"] > 0 and figures["concurrent"] == 3

    def test_entry_puts_each_figure_beside_its_baseline(self, figures: dict) -> None:
        entry = uploads.entry(figures, setting=BACKEND)
        assert entry.key == f"uploads | {BACKEND}"
        assert "bare file write" in entry.ratio and "whole decode" in entry.ratio and "in flight" in entry.ratio
        assert [name for name, _ in entry.rows if name.startswith("baseline")] == [
            "baseline: write + fsync + rename of the same bytes",
            "baseline: decode whole + thumbnail",
            "baseline: bytes in flight",
        ]
