"""Liveness of the API, its database and Prefect."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ecomflow.api.schemas import HealthOut
from ecomflow.engine.db.sessions import read_scope
from ecomflow.engine.orchestrator.runs import api_is_healthy

router = APIRouter(tags=["health"])


@router.get(
    "/health", response_model=HealthOut, responses={503: {"model": HealthOut, "description": "the database is down"}}
)
def health() -> JSONResponse:
    """Report whether the database and the Prefect API answer."""
    try:
        with read_scope() as session:
            session.execute(text("SELECT 1"))
        db = "ok"
    except Exception:
        db = "unavailable"
    prefect = "ok" if api_is_healthy() else "unavailable"
    status = "ok" if db == "ok" else "degraded"
    body = HealthOut(status=status, db=db, prefect=prefect).model_dump()
    return JSONResponse(body, status_code=200 if db == "ok" else 503)
