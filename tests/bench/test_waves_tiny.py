"""The waves benchmark at a tiny size: it runs end to end and reports every figure (no timed assertions)."""

from __future__ import annotations

import pytest

from bench import waves
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

pytestmark = pytest.mark.e2e


def test_three_orders_make_one_wave_one_run_and_all_ship() -> None:
    figures = run_main_unrecorded(waves, ["--db", BACKEND, "--orders", "3", "--staff", "2", "--timeout", "240"])
    assert (figures["shipped"], figures["waves"], figures["prefect_runs"]) == (3, 1, 1)
    assert figures["error_count"] == 0
    assert figures["steps_done"] == {"print_waybills": 1, "pick": 1, "check_and_pack": 1, "ship": 1}
    rows = dict(waves.table(figures))
    assert rows["orders imported / shipped"] == "3 / 3" and float(rows["CPU-s per order shipped, end to end"]) > 0
    assert waves.entry(figures, setting=BACKEND).key == f"waves | {BACKEND}, 3 orders, 2 warehouse staff"
