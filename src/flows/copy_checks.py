"""The advertising-law check (广告法极限词) as an auto step any process runs on its customer-facing fields."""

from __future__ import annotations

from typing import Any

from prefect import task

from ecomflow.engine.rules.ad_law import scan_form_text


@task
def ad_law_check(data: dict[str, Any], fields: list[str], banned: list[str]) -> dict[str, Any]:
    """Return every banned term in the named fields (dotted paths, lists expanded) as findings, with where it is."""
    hits = scan_form_text(data, fields=fields, banned=banned)
    return {"findings": [{"field": hit.field, "rule": "ad_law", "message": hit.message} for hit in hits]}


def has_step(run: Any, key: str) -> bool:
    """Tell whether the instance's definition version has the step (a check added in a later version)."""
    return any(step.key == key for step in run.spec.steps)
