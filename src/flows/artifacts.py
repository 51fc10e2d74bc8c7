"""Prefect artifacts where managers look: tables and summaries attached to the run."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """Return a valid artifact key (lowercase letters, digits, dashes) from the parts."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:250]


def publish_table(key: str, rows: list[dict[str, Any]], *, description: str) -> None:
    """Attach a table to the current run (and keep the latest under the key)."""
    create_table_artifact(table=rows, key=artifact_key(key), description=description)


def publish_markdown(key: str, markdown: str, *, description: str) -> None:
    """Attach a markdown summary to the current run."""
    create_markdown_artifact(markdown=markdown, key=artifact_key(key), description=description)


def publish_link(key: str, link: str, *, text: str, description: str) -> None:
    """Attach a link (e.g. a file's download page) to the current run."""
    create_link_artifact(link=link, link_text=text, key=artifact_key(key), description=description)
