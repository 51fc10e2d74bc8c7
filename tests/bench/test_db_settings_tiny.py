"""bench.db_settings on its own at a tiny size.

It seeds a database and compares each connection setting with its alternative.
"""

from __future__ import annotations

import pytest

from bench import db_settings
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

CLAIMS = 20


@pytest.fixture(scope="module")
def figures() -> dict:
    return run_main_unrecorded(
        db_settings, ["--db", BACKEND, "--open", "300", "--closed", "100", "--claims", str(CLAIMS)]
    )


class TestDbSettingsTiny:
    def test_seeds_the_asked_sizes(self, figures: dict) -> None:
        counts = figures["seed"]["counts"]
        assert counts["open"] + counts["claimed"] == 300 and counts["completed"] == 100

    def test_every_variant_claimed(self, figures: dict) -> None:
        settings = figures["settings"]
        if BACKEND == "sqlite":
            assert list(settings) == ["journal", "concurrent", "reads"]
            assert all(r["latency_ms"]["n"] == CLAIMS and r["claims_per_s"] > 0 for r in settings["journal"].values())
            ours = settings["concurrent"]["BEGIN IMMEDIATE + busy_timeout 30 s (ours)"]
            assert ours["errors"] == {} and ours["claims"] == ours["attempts"] == CLAIMS
        else:
            assert all(r["latency_ms"]["n"] == CLAIMS for r in settings["pre_ping"].values())

    def test_entry_puts_ours_beside_each_alternative(self, figures: dict) -> None:
        entry = db_settings.entry(figures["settings"], setting=BACKEND)
        assert entry.key == f"db_settings | {BACKEND}"
        assert "(ours)" in entry.rows[0][0] or "(ours: read_scope)" in entry.rows[0][0]
        assert entry.ratio.count("×") >= (3 if BACKEND == "sqlite" else 1)
