"""The one summary of durations: nearest-rank percentiles, scaled, and its one-line form."""

from __future__ import annotations

import pytest

from bench.harness.timing import format_summary, percentile, rate, summarize

pytestmark = pytest.mark.db_independent


class TestSummarize:
    def test_nearest_rank_percentiles_of_scaled_values(self) -> None:
        summary = summarize([i / 1000 for i in range(1, 101)], scale=1000)
        assert summary == {"n": 100, "p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0, "min": 1.0, "mean": 50.5}

    def test_an_empty_series_has_only_its_count(self) -> None:
        assert summarize([]) == {"n": 0}
        assert format_summary({"n": 0}, unit="ms") == "—"

    def test_percentile_of_one_value(self) -> None:
        assert percentile([7.0], 99) == 7.0


def test_format_summary_names_the_unit_once() -> None:
    summary = summarize([0.1, 0.2, 0.3])
    assert format_summary(summary, unit="s", keys=("p50", "max")) == "p50 0.200 · max 0.300 s (n=3)"


def test_rate_counts_calls_that_fit_in_a_second() -> None:
    assert rate([0.01] * 10) == 100.0
    assert rate([]) == 0.0
