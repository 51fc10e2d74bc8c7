"""A process's page: its map drawn from flows.yaml, its stored definition versions, and for managers the heat view."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ecomflow.api.flow_registry import has_flow
from ecomflow.api.web.deps import PageRefused, StaffPage
from ecomflow.api.web.diagrams import heat_svg, process_map_svg
from ecomflow.api.web.labels import process_title
from ecomflow.api.web.rendering import render
from ecomflow.engine import access
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.versions import count_running_by_version, current_version_if_stored, list_versions
from ecomflow.engine.reports.step_heat import measure_step_heat

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/processes/{key}", response_class=HTMLResponse)
def process_map_page(key: str, page: StaffPage) -> HTMLResponse:
    """Show the process map; managers also see where its cases wait now."""
    spec = page.definitions.processes.get(key)
    if spec is None:
        raise PageRefused(404, "refused.page_missing", page)
    heat = None
    with read_scope() as session:
        versions = list_versions(session, key)
        running = count_running_by_version(session, key)
        current = current_version_if_stored(session, page.definitions, key)
        if access.may_see_step_heat(page.user):
            heat = measure_step_heat(session, process_key=key, now=page.now)
    return render(
        "process_map.html",
        page,
        spec=spec,
        title=process_title(page.definitions, page.t, key),
        map_svg=process_map_svg(spec, t=page.t, definitions=page.definitions),
        heat_svg=heat_svg(spec, heat, t=page.t, definitions=page.definitions) if heat is not None else None,
        heat_open=bool(heat),
        may_start=access.may_start_process(page.user, spec) and has_flow(key),
        versions=[(v, running.get(v.version, 0), v.version == current) for v in reversed(versions)],
        active_nav="processes",
    )
