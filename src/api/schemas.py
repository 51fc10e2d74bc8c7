"""Response and request bodies of API v1."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    """Request bodies refuse fields they do not know."""

    model_config = ConfigDict(extra="forbid")


class StartInstanceIn(Body):
    business_key: str = Field(min_length=1, max_length=128, pattern=r"^[\w\-./:]+$")
    params: dict[str, Any]


class CompleteIn(Body):
    data: dict[str, Any]


class AssignIn(Body):
    user: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class CommentIn(Body):
    text: str = Field(min_length=1, max_length=5000)


class CancelIn(Body):
    reason: str = Field(default="", max_length=500)


class MeOut(BaseModel):
    name: str
    roles: list[str]
    is_manager: bool


class Label(BaseModel):
    zh: str
    en: str


class StepOut(BaseModel):
    key: str
    kind: str
    title: Label
    role: str | None
    roles: list[str]
    due: str | None
    form: dict[str, Any] | None


class ProcessOut(BaseModel):
    key: str
    title: Label
    version: int
    start_form: dict[str, Any]
    steps: list[StepOut]
    schedule: dict[str, str] | None


class TaskOut(BaseModel):
    id: str
    instance_id: str
    process: str
    step: str
    kind: str
    round: int
    role: str
    state: str
    assignee: str | None
    due_at: datetime | None
    priority: int
    created_at: datetime
    version: int


class CommentOut(BaseModel):
    author: str
    text: str
    created_at: datetime


class EventOut(BaseModel):
    id: int
    at: datetime
    type: str
    actor: str
    task_id: str | None
    data: dict[str, Any]


class TaskDetailOut(TaskOut):
    form: dict[str, Any] | None
    context: dict[str, Any]
    output: dict[str, Any] | None
    completed_by: str | None
    comments: list[CommentOut]
    history: list[EventOut]


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class InstanceLink(BaseModel):
    id: str
    process: str
    business_key: str
    state: str


class InstanceOut(BaseModel):
    id: str
    process: str
    business_key: str
    state: str
    definition_version: int
    params: dict[str, Any]
    result: dict[str, Any] | None
    flow_run_id: str | None
    flow_run_url: str | None
    created_at: datetime
    ended_at: datetime | None


class InstanceDetailOut(InstanceOut):
    tasks: list[TaskOut]
    history: list[EventOut]
    parent: InstanceLink | None
    children: list[InstanceLink]


class InstancePage(BaseModel):
    items: list[InstanceOut]


class HealthOut(BaseModel):
    status: str
    db: str
    prefect: str
