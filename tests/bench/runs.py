"""Run a benchmark's command line in a test, checking that a run without --record records nothing."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from bench.harness import recording


def run_main_unrecorded(module: ModuleType, argv: list[str]) -> Any:
    """Return what module.main(argv) returns; fail if the run tried to write an entry to RESULTS.md."""
    assert "--record" not in argv
    recorded: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recording, "record", lambda entry, provenance, **_: recorded.append(entry.key))
        figures = module.main(argv)
    assert recorded == [], "a run without --record must leave bench/RESULTS.md alone"
    return figures
