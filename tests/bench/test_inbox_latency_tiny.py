"""Benchmark (e) at a tiny size on the test database kind: it runs end to end and reports every figure.

No timed assertions: the figures' values depend on the machine; their presence does not.
"""

from __future__ import annotations

import pytest

from bench import db_settings, inbox_latency
from tests.bench.runs import run_main_unrecorded
from tests.conftest import BACKEND

REQUESTS = 20
ARGV = ["--db", BACKEND, "--open", "400", "--closed", "500", "--requests", str(REQUESTS), "--depth", "1"]


@pytest.fixture(scope="module")
def run() -> tuple[dict, list[tuple[str, str]]]:
    figures = run_main_unrecorded(inbox_latency, ARGV)
    return figures, inbox_latency.table(figures)


class TestInboxLatencyTiny:
    def test_seeds_the_asked_sizes(self, run) -> None:
        counts = run[0]["seed"]["counts"]
        assert counts["open"] + counts["claimed"] == 400
        assert counts["completed"] == 500
        assert counts["rows_audit_events"] > counts["rows_human_tasks"] > 0
        assert run[0]["db_bytes"] > 0

    def test_times_every_inbox_series(self, run) -> None:
        series = run[0]["inbox_http"]
        assert series["GET /me (authentication only)"]["n"] == REQUESTS
        for who in ("staff", "manager"):
            for sort in inbox_latency.SORTS:
                for page in ("first page", "page 2 (cursor)"):
                    [summary] = [
                        s for name, s in series.items() if name.startswith(who) and f"sort={sort} · {page}" in name
                    ]
                    assert summary["n"] == REQUESTS
                    assert {"p50", "p95", "p99", "max"} <= set(summary)
        assert all(s["n"] == REQUESTS for s in run[0]["inbox_engine"].values())

    def test_claims_and_completes_every_task(self, run) -> None:
        figures = run[0]
        assert figures["http"]["failures"] == []
        assert figures["http"]["pair"]["n"] == REQUESTS
        assert figures["http_claims"]["failures"] == 0
        assert figures["engine"]["latency"]["n"] == REQUESTS
        assert figures["raw"]["latency"]["n"] == REQUESTS and figures["raw"]["lost"] == 0
        assert min(figures[k]["claims_per_s"] for k in ("http_claims", "engine", "raw")) > 0
        # Each complete queued its flow's resume, and with no Prefect nothing delivered it.
        assert figures["queued_resumes"][0] == REQUESTS

    def test_explains_the_inbox_and_the_claim(self, run) -> None:
        plans = run[0]["explain"]
        # Every caller and sort is explained (the due sort sends several SELECTs, each explained).
        explained = {name.split(" · SELECT")[0] for name in plans if name.startswith("inbox,")}
        assert len(explained) == 2 * len(inbox_latency.SORTS)
        assert any(name.startswith("claim of an approval task") for name in plans)
        assert all(plan for plan in plans.values())

    def test_report_has_every_row(self, run) -> None:
        names = [name for name, _ in run[1]]
        for expected in (
            "tasks: open / claimed / completed",
            "POST /tasks/{id}/complete",
            "claim + complete (pair)",
            "claims/s: HTTP claim / engine / raw SQL",
            "engine / raw; HTTP / raw; HTTP / engine",
            "CPU ms per claim: API process (HTTP claim) / engine (claim_task)",
            "goal inbox p95 < 20 ms (worst series)",
            "goal claim+complete p99 < 20 ms",
        ):
            assert expected in names
        assert all(value for _, value in run[1])

    def test_compares_each_connection_setting_with_its_alternative(self, run) -> None:
        settings = run[0]["settings"]
        if BACKEND == "sqlite":
            assert list(settings) == ["journal", "concurrent", "reads"]
            assert all(result["claims_per_s"] > 0 for result in settings["journal"].values())
            ours = settings["concurrent"]["BEGIN IMMEDIATE + busy_timeout 30 s (ours)"]
            assert ours["errors"] == {} and ours["claims"] == ours["attempts"] > 0
            assert len(settings["reads"]) == 2
            for result in settings["reads"].values():
                assert result["reads"] > 0 and result["writes_per_s"] > 0 and result["errors"] == {}
        else:
            assert list(settings["pre_ping"]) == ["pool_pre_ping on (ours)", "pool_pre_ping off"]
            assert all(result["claims_per_s"] > 0 for result in settings["pre_ping"].values())
        assert any(name.startswith("setting: ") for name, _ in run[1])

    def test_entries_hold_the_figures_and_their_baselines(self, run) -> None:
        figures = run[0]
        entry = inbox_latency.entry(figures, setting=BACKEND)
        assert entry.key == f"inbox_latency | {BACKEND}"
        assert entry.ratio.startswith("against a raw SQL compare-and-set: engine claims ")
        assert dict(entry.rows)["tasks open + claimed / completed"] == "400 / 500"
        assert dict(entry.rows)["GET /me (authentication only)"].startswith("p50 ")
        assert "% of the engine's" in entry.ratio
        # The engine's CPU is this process's own clock; the API's is read in clock ticks, so only its presence.
        assert figures["engine"]["cpu_ms"] > 0 and figures["http_claims"]["cpu_ms"] >= 0
        assert all(value for _, value in entry.rows)
        settings = db_settings.entry(figures["settings"], setting=BACKEND)
        assert settings.key == f"db_settings | {BACKEND}"
        assert settings.ratio.startswith("against the alternatives: ") and "×" in settings.ratio
        assert len(settings.rows) == (8 if BACKEND == "sqlite" else 2)
