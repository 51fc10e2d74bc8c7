"""Every `# noqa` in the linted tree names its codes and says why on the same line.

`make lint` runs ruff; this test keeps its exemptions explained: `# noqa: E501 - a URL that cannot be split`.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

pytestmark = pytest.mark.db_independent

REPO = Path(__file__).resolve().parents[1]
LINTED = ("src", "tests", "bench", "migrations")
# A noqa as ruff reads it in a comment: bare, with its codes, or file-wide after `ruff:`.
NOQA = re.compile(r"#\s*(?:ruff:\s*)?(?i:noqa)\b")
# Codes (comma- or space-separated), then the reason: text with a letter in it, after an optional separator.
# The codes are matched atomically, so a second code is never taken for the reason.
EXPLAINED = re.compile(
    r"#\s*(?:ruff:\s*)?(?i:noqa):\s*(?>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)[\s,]*[-—:(]?\s*\S*[^\W\d_]"
)


def unexplained_noqa(source: str) -> list[int]:
    """Return the lines whose comment has a noqa without codes or without a reason after its codes."""
    lines = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        found = NOQA.finditer(token.string) if token.type == tokenize.COMMENT else ()
        if not all(EXPLAINED.match(token.string, m.start()) for m in found):
            lines.append(token.start[0])
    return lines


def linted_files() -> list[Path]:
    return sorted(path for root in LINTED for path in (REPO / root).rglob("*.py"))


@pytest.mark.parametrize(
    "line",
    [
        "x = 1  # noqa",
        "x = 1  # noqa: E501",
        "x = 1  # noqa: E501, F401",
        "x = 1  # noqa: E501 F401",
        "x = 1  # noqa: E501 -",
        "x = 1  # NOQA:E501",
        "x = 1  # the reason first # noqa: E501",
        "# ruff: noqa",
        "# ruff: noqa: E501",
    ],
)
def test_a_noqa_without_its_reason_is_found(line: str) -> None:
    assert unexplained_noqa(f"{line}\n") == [1]


@pytest.mark.parametrize(
    "line",
    [
        "x = 1  # noqa: E501 - a URL that cannot be split",
        "x = 1  # noqa: E501, F401 - fixtures are found by name",
        "x = 1  # noqa: E712 (SQL, not Python, comparison)",
        "x = 1  # noqa: PLC0415: imported late so settings are read first",
        "# ruff: noqa: E501 - a generated table",
        'x = "# noqa"  # a string, not a comment',
        "x = 1  # no exemption here",
    ],
)
def test_a_noqa_with_its_reason_passes(line: str) -> None:
    assert unexplained_noqa(f"{line}\n") == []


def test_every_noqa_in_the_tree_has_a_reason() -> None:
    files = linted_files()
    assert len(files) > 100, "the linted folders were not found"
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for path in files
        for line in unexplained_noqa(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "a noqa needs its reason after the codes on the same line: " + ", ".join(offenders)
