"""Printing a benchmark's figures: its rows, then the first problem lines of each log."""

from __future__ import annotations

from typing import Any

from bench.harness.logs import log_counts_text


def print_rows(rows: list[tuple[str, str]]) -> None:
    """Print (name, value) rows as two aligned columns."""
    width = max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def print_report(rows: list[tuple[str, str]], figures: dict[str, Any]) -> None:
    """Print a benchmark's rows, the first problem lines of each log and the first ERROR with its exception."""
    print_rows(rows)
    for name, samples in figures.get("log_samples", {}).items():
        print(f"--- {name} (first problem lines)")
        for line in samples:
            print("   ", line)
    for name, context in figures.get("first_errors", {}).items():
        print(f"--- {name}: first ERROR with context (data dir {figures.get('data_dir')})")
        for line in context:
            if line and not line[0].isspace():  # the log line and the exception lines, not the frames
                print("   ", line[:200])


def closing_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the rows a stack benchmark's table ends with: stack start-up and log problems."""
    startup = figures["startup"]
    return [
        (
            "stack start: prefect healthy / api healthy / worker ready",
            " / ".join(f"{startup[k]} s" for k in ("prefect_start_s", "api_start_s", "worker_ready_s")),
        ),
        ("log lines ERROR / WARNING", log_counts_text(figures["logs"])),
    ]
