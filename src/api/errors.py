"""One table from domain errors to HTTP statuses, and one error body shape for all of them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecomflow.api.schemas import ErrorOut, ValidationErrorOut
from ecomflow.engine.errors import (
    Conflict,
    DefinitionError,
    EcomflowError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
    Unauthorized,
    ValidationFailed,
)

logger = logging.getLogger("ecomflow.api")

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[EcomflowError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (ValidationFailed, 422),
    (TooManyAttempts, 429),
    (DefinitionError, 500),
)


_MEANINGS = {
    401: "no valid bearer token (missing, unknown or revoked)",
    403: "the caller may see the object but not do this",
    404: "no such object, or the caller may not see it",
    409: "the object's state forbids this now",
    413: "the request body is larger than the limit",
    422: "the request broke a rule; `fields` names each field",
    429: "too many failed attempts; `detail` says until when",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the OpenAPI `responses=` entries documenting these error statuses with the one error body."""
    return {
        status: {"model": ValidationErrorOut if status == 422 else ErrorOut, "description": _MEANINGS[status]}
        for status in statuses
    }


def error_body(error: str, detail: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the error body every endpoint uses."""
    body: dict[str, Any] = {"error": error, "detail": detail}
    if fields is not None:
        body["fields"] = fields
    return body


def status_of(exc: EcomflowError) -> int:
    return next((status for cls, status in STATUS_BY_ERROR if isinstance(exc, cls)), 400)


def _field_path(loc: tuple[Any, ...], error_type: str = "") -> str:
    if error_type == "json_invalid":
        return "body"  # its loc holds a character position, not a field
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as {"error", "detail", "fields"?} with its status."""

    @app.exception_handler(EcomflowError)
    async def _domain(request: Request, exc: EcomflowError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            # The server's own fault (flows.yaml broken): the operator reads the detail in the log, callers get none.
            logger.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc.detail)
            return JSONResponse(
                error_body(type(exc).__name__, "the server is misconfigured; it has been logged"), status_code=status
            )
        fields = None
        if isinstance(exc, ValidationFailed):
            fields = [{"field": p.field, "rule": p.rule, "message": p.message} for p in exc.problems]
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return JSONResponse(error_body(type(exc).__name__, exc.detail, fields), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for error in exc.errors():
            path = _field_path(tuple(error["loc"]), error["type"])
            fields.append({"field": path, "rule": error["type"], "message": f"{path}: {error['msg']}"})
        detail = "; ".join(f["message"] for f in fields)
        return JSONResponse(error_body("ValidationFailed", detail, fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's answer to a body it could not decode (not UTF-8, nested too deep):
            # malformed JSON, as json_invalid is.
            message = "body: the body is not valid UTF-8 JSON"
            return JSONResponse(
                error_body(
                    "ValidationFailed", message, [{"field": "body", "rule": "json_invalid", "message": message}]
                ),
                status_code=422,
            )
        fields = getattr(exc, "fields", None)
        if fields:
            return JSONResponse(error_body("ValidationFailed", str(exc.detail), fields), status_code=exc.status_code)
        name = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}.get(exc.status_code, "HTTPError")
        return JSONResponse(error_body(name, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("InternalError", "an unexpected error occurred; it has been logged"), status_code=500
        )
