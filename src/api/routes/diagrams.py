"""Process maps over the API: a process's map and an instance's path as SVG, and the heat view's numbers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import select

from ecomflow.api.deps import CurrentUser, DefinitionsDep
from ecomflow.api.errors import error_responses
from ecomflow.api.web.diagrams import instance_path_svg, process_map_svg
from ecomflow.api.web.i18n import Translator
from ecomflow.api.web.labels import process_title
from ecomflow.engine import access
from ecomflow.engine.clock import utcnow
from ecomflow.engine.db.models import HumanTask
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.definitions.instance_path import trace_path
from ecomflow.engine.definitions.versions import spec_of_instance
from ecomflow.engine.errors import Forbidden
from ecomflow.engine.instances.lifecycle import children_of, visible_instance
from ecomflow.engine.reports.step_heat import measure_step_heat

router = APIRouter(tags=["processes"], responses=error_responses(401, 413, 422))
SVG = "image/svg+xml"
_SVG_RESPONSE = {200: {"content": {SVG: {}}, "description": "the map as an SVG document"}}


class StepHeatOut(BaseModel):
    """Open tasks (or armed timers) at one step of a process and the median time they have waited."""

    step: str
    open: int
    median_wait_seconds: float | None


@router.get(
    "/processes/{key}/diagram.svg",
    response_class=Response,
    responses={**_SVG_RESPONSE, **error_responses(404)},
)
def process_diagram(
    key: str, user: CurrentUser, definitions: DefinitionsDep, lang: Literal["zh", "en"] = "zh"
) -> Response:
    """Return the process's map drawn from flows.yaml: steps by kind and role, reject loops, conditions, lanes."""
    spec = definitions.process(key)
    svg = process_map_svg(spec, t=Translator(lang), definitions=definitions)
    return Response(content=str(svg), media_type=SVG)


@router.get(
    "/instances/{instance_id}/diagram.svg",
    response_class=Response,
    responses={**_SVG_RESPONSE, **error_responses(404)},
)
def instance_diagram(
    instance_id: str, user: CurrentUser, definitions: DefinitionsDep, lang: Literal["zh", "en"] = "zh"
) -> Response:
    """Return the instance's path on the map of its own definition version (instances the caller may see)."""
    t = Translator(lang)
    with read_scope() as session:
        instance = visible_instance(session, instance_id, principal=user)
        spec = spec_of_instance(session, instance)
        path = trace_path(session, instance, spec)
        tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id))
        visible = {task.id for task in tasks if access.may_see_task(user, task)}
        visible |= {c.id for c in children_of(session, instance.id) if access.may_see_instance(session, user, c)}
        title = f"{process_title(definitions, t, instance.process_key)} {instance.business_key}"
    svg = instance_path_svg(
        spec, path, t=t, definitions=definitions, zone=definitions.calendar.zone, title=title, visible=visible
    )
    return Response(content=str(svg), media_type=SVG)


@router.get("/processes/{key}/heat", response_model=list[StepHeatOut], responses=error_responses(403, 404))
def process_heat(key: str, user: CurrentUser, definitions: DefinitionsDep) -> list[StepHeatOut]:
    """Return, per step of the process, how many are open there now and their median wait (managers)."""
    spec = definitions.process(key)
    if not access.may_see_step_heat(user):
        raise Forbidden(f"only managers may see where every {key} case waits", process=key)
    with read_scope() as session:
        heat = measure_step_heat(session, process_key=key, now=utcnow())
    return [
        StepHeatOut(
            step=step.key,
            open=heat[step.key].open if step.key in heat else 0,
            median_wait_seconds=heat[step.key].median_wait.total_seconds() if step.key in heat else None,
        )
        for step in spec.steps
    ]
