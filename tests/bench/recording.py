"""Run a benchmark's command line in a test, checking that --no-record leaves bench/RESULTS.md alone."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


def main_without_recording(module: ModuleType, argv: list[str]) -> Any:
    """Return what module.main(argv + --no-record) returns; fail if it appended to RESULTS.md."""
    recorded: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "append_results", lambda title, **_: recorded.append(title))
        figures = module.main([*argv, "--no-record"] if "--no-record" not in argv else argv)
    assert recorded == [], "--no-record must leave bench/RESULTS.md alone"
    return figures
