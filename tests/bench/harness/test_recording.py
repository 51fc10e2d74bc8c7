"""Recording replaces one benchmark's entry for one setting in RESULTS.md and leaves every other byte alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness.recording import RESULTS_PATH, Entry, Provenance, entries, record, render, replace_entry

pytestmark = pytest.mark.db_independent

RESULTS = """# Benchmark results

A header paragraph that recording must keep.

## turnaround

<!-- entry: turnaround | sqlite -->
### turnaround · sqlite
- an old figure
<!-- end of entry -->

<!-- entry: turnaround | postgresql -->
### turnaround · postgresql
- another old figure
<!-- end of entry -->

## chaos

<!-- entry: chaos | sqlite -->
### chaos · sqlite
- chaos figure
<!-- end of entry -->

A closing note.
"""


def _entry(benchmark: str = "turnaround", setting: str = "sqlite", figure: str = "p50 0.150 s") -> Entry:
    return Entry(benchmark=benchmark, setting=setting, ratio="against the goal: 0.15×", rows=[("turnaround", figure)])


def _provenance() -> Provenance:
    return Provenance(
        measured_at="2026-12-05 10:00 UTC",
        code="abc1234 (clean)",
        machine="2 CPUs (test)",
        load="0.1 → 0.2",
        command="python -m bench.turnaround --steps 5",
    )


class TestReplaceEntry:
    def test_replaces_only_the_entry_of_that_benchmark_and_setting(self) -> None:
        text = replace_entry(RESULTS, _entry(), _provenance())
        old, new = entries(RESULTS), entries(text)
        assert list(new) == list(old)
        assert new["turnaround | sqlite"] == render(_entry(), _provenance())
        assert {key: new[key] for key in new if key != "turnaround | sqlite"} == {
            key: old[key] for key in old if key != "turnaround | sqlite"
        }
        # Everything outside the replaced entry is byte for byte what it was.
        before, after = RESULTS.split(old["turnaround | sqlite"]), text.split(new["turnaround | sqlite"])
        assert before == after

    def test_a_second_recording_replaces_the_first(self) -> None:
        once = replace_entry(RESULTS, _entry(figure="p50 0.150 s"), _provenance())
        twice = replace_entry(once, _entry(figure="p50 0.300 s"), _provenance())
        assert twice.count("<!-- entry: turnaround | sqlite -->") == 1
        assert "p50 0.300 s" in twice and "p50 0.150 s" not in twice
        assert len(twice.splitlines()) == len(once.splitlines())

    def test_a_new_setting_goes_after_its_benchmarks_last_entry(self) -> None:
        text = replace_entry(RESULTS, _entry(setting="sqlite, env ECOMFLOW_WORKER_POLL_SECONDS=0.2"), _provenance())
        assert list(entries(text)) == [
            "turnaround | sqlite",
            "turnaround | postgresql",
            "turnaround | sqlite, env ECOMFLOW_WORKER_POLL_SECONDS=0.2",
            "chaos | sqlite",
        ]
        assert text.startswith(RESULTS.split("\n## chaos", maxsplit=1)[0])

    def test_an_entry_without_its_end_marker_is_refused_not_swallowed(self) -> None:
        broken = RESULTS.replace("<!-- end of entry -->", "", 1)
        with pytest.raises(ValueError, match="end markers"):
            replace_entry(broken, _entry(setting="postgresql"), _provenance())

    def test_the_repository_results_file_is_well_formed(self) -> None:
        text = RESULTS_PATH.read_text()
        # Each entry parses on its own: a missing end marker would join two and lose one on the next --record.
        assert len(entries(text)) == sum(line.startswith("<!-- entry: ") for line in text.splitlines())
        replace_entry(text, _entry(setting="sqlite, check"), _provenance())

    def test_a_new_benchmark_gets_a_heading_at_the_end(self) -> None:
        text = replace_entry(RESULTS, _entry(benchmark="db_settings"), _provenance())
        assert text.startswith(RESULTS.rstrip("\n"))
        assert text.rstrip("\n").endswith(render(_entry(benchmark="db_settings"), _provenance()).rstrip("\n"))
        assert "\n## db_settings\n" in text


class TestRender:
    def test_says_date_commit_command_ratio_and_figures(self) -> None:
        text = render(_entry(), _provenance())
        for expected in (
            "2026-12-05 10:00 UTC",
            "abc1234 (clean)",
            "`python -m bench.turnaround --steps 5`",
            "**against the goal: 0.15×**",
            "| turnaround | p50 0.150 s |",
        ):
            assert expected in text


def test_record_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    record(_entry(figure="p50 0.777 s"), _provenance(), path=path)
    assert "p50 0.777 s" in entries(path.read_text())["turnaround | sqlite"]
    assert "A closing note." in path.read_text()
