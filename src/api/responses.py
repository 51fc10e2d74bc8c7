"""Answer with a model the route has already built (and so validated) without FastAPI validating it again."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


class ModelResponse(Response):
    """The model's JSON as FastAPI would write it for `response_model` (by alias, JSON mode).

    A returned model is validated a second time against response_model, and for a sync route on a
    threadpool hop of its own; a returned Response skips both, and the route's OpenAPI still names its model.
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.model_dump_json(by_alias=True), status_code=status_code)
