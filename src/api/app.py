"""The FastAPI application: thin routes over the engine, one error shape, a request size limit."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import error_body, install_error_handlers
from api.routes import health, instances, processes, tasks
from engine.config import get_settings


def create_app() -> FastAPI:
    """Build the API application."""
    app = FastAPI(
        title="ecomflow",
        version="1",
        description="Task inbox and process API of ecomflow. Send `Authorization: Bearer <token>`.",
    )
    install_error_handlers(app)
    limit = get_settings().max_request_bytes

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):  # noqa: ANN001, ANN202
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return JSONResponse(error_body("PayloadTooLarge", f"request bodies are limited to {limit} bytes"), status_code=413)
        return await call_next(request)

    for module in (health, processes, instances, tasks):
        app.include_router(module.router)
    return app
