"""A py-spy profile is summarised over its working samples: waiting threads say nothing about the CPU."""

from __future__ import annotations

import pytest

from bench.harness.profiles import summarise_profile

pytestmark = pytest.mark.db_independent


class TestSummariseProfile:
    FOLDED = "\n".join(
        [
            'process 1:"python";<module> (/x/run.py:1);work (/x/site-packages/sqlalchemy/orm/session.py:9) 6',
            'process 1:"python";<module> (/x/run.py:1);create_default_context (/usr/lib/python3.11/ssl.py:7) 3',
            'process 1:"python";<module> (/x/run.py:1);select (/usr/lib/python3.11/selectors.py:4) 90',
        ]
    )

    def test_leaves_out_waiting_samples(self) -> None:
        summary = summarise_profile(self.FOLDED)
        assert summary["samples"] == 99 and summary["working_samples"] == 9
        assert summary["self_by_package"] == [("sqlalchemy", 66.7), ("stdlib ssl", 33.3)]
        assert summary["self_by_function"][0] == ("work (orm/session.py)", 66.7)

    def test_empty_profile(self) -> None:
        assert summarise_profile("")["samples"] == 0
