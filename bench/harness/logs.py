"""A run's data dir, and the ERROR and WARNING lines of the logs its processes wrote there."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def make_data_dir(prefix: str) -> Path:
    """Make a new temp dir with a logs/ folder for one run; return it."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    (data_dir / "logs").mkdir()
    return data_dir


def finish_data_dir(data_dir: Path, *, keep: bool) -> None:
    """Keep the data dir (and say where it is) or remove it."""
    if keep:
        print(f"[bench] data dir kept: {data_dir}", file=sys.stderr)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)


def log_problems(log_dir: Path, limit: int = 20) -> dict[str, Any]:
    """Count ERROR/CRITICAL lines (and WARNING lines) in each log of a directory.

    Keep the first few and the first error's context.
    """
    report: dict[str, Any] = {}
    for path in sorted(log_dir.glob("*.log")):
        errors, warnings, samples, first_error = 0, 0, [], None
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines):
            if re.search(r"\b(ERROR|CRITICAL)\b", line):
                errors += 1
                first_error = number if first_error is None else first_error
            elif re.search(r"\bWARNING\b", line):
                warnings += 1
            else:
                continue
            if len(samples) < limit:
                samples.append(line[:300])
        context = [line[:300] for line in lines[first_error : first_error + 60]] if first_error is not None else []
        report[path.name] = {"errors": errors, "warnings": warnings, "samples": samples, "first_error_context": context}
    return report


def log_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Return the figures a benchmark keeps of a log report: counts, first problem lines, first error's context."""
    return {
        "logs": {name: {k: r[k] for k in ("errors", "warnings")} for name, r in report.items()},
        "log_samples": {name: r["samples"] for name, r in report.items() if r["samples"]},
        "first_errors": {name: r["first_error_context"] for name, r in report.items() if r["first_error_context"]},
    }


def log_counts_text(logs: dict[str, dict[str, int]]) -> str:
    """Return 'api.log: 0/0, worker.log: 1/3' (ERROR/WARNING lines per log), or 'none'."""
    return ", ".join(f"{name}: {r['errors']}/{r['warnings']}" for name, r in logs.items()) or "none"


def log_error_count(logs: dict[str, dict[str, int]]) -> int:
    """Return the ERROR lines over all logs."""
    return sum(r["errors"] for r in logs.values())
