"""The FastAPI application: thin routes over the engine, one error shape, a request size limit."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecomflow.api.errors import error_body, install_error_handlers
from ecomflow.api.nul_guard import RefuseNul
from ecomflow.api.routes import (
    attachments,
    catalog,
    diagrams,
    exports,
    figures,
    health,
    imports,
    inbound,
    instances,
    orders,
    processes,
    reports,
    sessions,
    stock,
    tasks,
    users,
    waves,
    webhooks,
)
from ecomflow.api.uploads import is_upload_path, upload_body_limit
from ecomflow.api.web import mount_web
from ecomflow.api.web.rendering import HOME
from ecomflow.engine.config import get_settings


def body_limit(path: str, limit: int) -> int:
    """Return the body limit of a path: an upload's (the file's own limit stops it mid-stream), or the general one."""
    return upload_body_limit(path) if is_upload_path(path) else limit


class _BodyLimit:
    """Refuse a body over the limit: at once by its Content-Length, else while it streams in (chunked has none).

    Plain ASGI: Starlette's BaseHTTPMiddleware (`@app.middleware`) costs a task and a stream per request.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        limit = body_limit(scope["path"], self.limit)
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > limit:
            body = error_body("PayloadTooLarge", f"request bodies are limited to {limit} bytes")
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request bodies are limited to {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


def create_app() -> FastAPI:
    """Build the API application."""
    app = FastAPI(
        title="ecomflow",
        version="1",
        description="Task inbox and process API of ecomflow. Send `Authorization: Bearer <token>`.",
    )
    install_error_handlers(app)
    limit = get_settings().max_request_bytes
    # RefuseNul sits inside the limit, so it never buffers more than the limit lets through.
    app.add_middleware(RefuseNul)
    app.add_middleware(_BodyLimit, limit=limit)

    routers = (
        health,
        processes,
        diagrams,
        sessions,
        instances,
        tasks,
        attachments,
        users,
        reports,
        figures,
        exports,
        webhooks,
    )
    for module in (*routers, catalog, stock, imports, inbound, orders, waves):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def redirect_to_pages() -> RedirectResponse:
        """Send a browser at the bare address to the staff pages (not part of the API)."""
        return RedirectResponse(HOME, status_code=307)

    # The staff web pages and manager dashboard under /ui (cookie sessions; the API above keeps bearer tokens).
    mount_web(app)
    return app
