"""The text a process's definition version is stored as: a small flows.yaml of that process alone.

It holds the process's own section and the shared sections its steps and flow read: `roles`
(who does each step, who starts it), `sla` (due-time defaults, escalation) and `rules` (the
parameters its checks apply). The `calendar` is left out on purpose: working hours and holidays
are facts about the team, and every instance counts its due times on the current calendar.
Written canonically (keys in file order, no comments), so an edit of comments or layout makes
no new version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["SHARED_SECTIONS", "process_text", "text_sha256"]

SHARED_SECTIONS = ("roles", "sla", "rules")


def process_text(source: Mapping[str, Any], key: str) -> str:
    """Return the stored text of process `key` cut from a loaded flows.yaml mapping."""
    document = {name: source.get(name) for name in SHARED_SECTIONS}
    document["processes"] = {key: source["processes"][key]}
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=False, width=120)


def text_sha256(text: str) -> str:
    """Return the hex SHA-256 of a stored text: the identity of a definition version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
