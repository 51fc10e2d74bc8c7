"""Response and request bodies of API v1."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ecomflow.engine.tasks.bulk import BulkAction


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
    # flows.yaml's `starters` (role keys, or "managers"), and whether the caller is one of them.
    starters: list[str]
    may_start: bool


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
    overdue: bool = Field(description="open or claimed, and past its due time")
    priority: int = Field(description="higher is more urgent; the inbox's priority sort serves it first")
    at_risk: bool = Field(description="open or claimed, and forecast to finish after its due time")
    expected_finish_at: datetime | None = Field(
        description="when the role's queue and recent throughput say it will be done; null without a forecast",
    )
    escalated_to: str | None = Field(description="the role (or managers) that may also take it since it escalated")
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


class GeneratedFileOut(BaseModel):
    """A file a step wrote for the instance (a listing's bulk-upload file): download it at `url`."""

    name: str
    attachment_id: str
    filename: str
    content_type: str
    url: str


class InstanceDetailOut(InstanceOut):
    tasks: list[TaskOut]
    history: list[EventOut]
    parent: InstanceLink | None
    children: list[InstanceLink]
    files: list[GeneratedFileOut]


class InstancePage(BaseModel):
    items: list[InstanceOut]


class HealthOut(BaseModel):
    status: str
    db: str
    prefect: str


class DelegateIn(Body):
    user: str = Field(min_length=1, max_length=64, description="the colleague who takes the task over")
    reason: str = Field(max_length=500, description="why; required, kept in the task's history")


class BulkIn(Body):
    action: BulkAction
    task_ids: list[str] = Field(description="1 to 200 unique task ids; results come back in this order")
    user: str | None = Field(default=None, max_length=64, description="for assign: whom the tasks go to")
    reason: str = Field(default="", max_length=500, description="kept in each task's history; needed to reassign")


class FieldProblemOut(BaseModel):
    field: str
    rule: str
    message: str


class ErrorOut(BaseModel):
    """The one error body: its name, a sentence, and on 422 one entry per broken rule."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="the error's name: NotFound, Forbidden, AlreadyClaimed, ValidationFailed, ...")
    detail: str = Field(description="a sentence naming the object and why")
    fields: list[FieldProblemOut] = Field(
        default_factory=list, description="on 422 only: each field and the rule it broke"
    )


class ValidationErrorOut(ErrorOut):
    """A 422: the payload broke rules, each named in `fields`."""

    fields: list[FieldProblemOut]


class TokensRevokedOut(BaseModel):
    revoked: int = Field(description="how many tokens were revoked now; they answer 401 from this moment")


class AccessRevokedOut(TokensRevokedOut):
    web_sessions_revoked: int = Field(
        description="how many web sessions (/ui) were ended now; their cookies open nothing"
    )


class WebSessionOut(BaseModel):
    """A live web session (/ui) of the caller; its secret stays in that browser's cookie."""

    id: str = Field(description="the session's public id: names it here, proves nothing")
    created_at: datetime
    last_seen_at: datetime = Field(description="the last page request; written at most once a minute")
    expires_at: datetime = Field(description="the end of its lifetime, whatever happens")
    idle_expires_at: datetime = Field(
        description="when it ends if no page is requested before (at the latest expires_at)"
    )
    client_address: str | None
    user_agent: str | None = Field(description="the browser's User-Agent, cut to 200 characters")


class BulkItemOut(BaseModel):
    task_id: str
    ok: bool
    status: int = Field(description="the HTTP status this task alone would have had")
    unchanged: bool | None = Field(default=None, description="true when the task already was as asked")
    error: str | None = None
    detail: str | None = None
    fields: list[FieldProblemOut] | None = None
    task: TaskOut | None = None


class BulkOut(BaseModel):
    results: list[BulkItemOut]


class AbsenceIn(Body):
    until: AwareDatetime | None = Field(default=None, description="when they are back; none: until marked back")
    substitute: str | None = Field(default=None, max_length=64, description="who takes over their claimed tasks")
    reason: str = Field(max_length=500)


class AbsenceOut(BaseModel):
    since: datetime
    until: datetime | None
    substitute: str | None


class ContactIn(Body):
    """The contact details to change; a field left out stays, an empty string or null clears it."""

    mobile: str | None = Field(default=None, max_length=32, description="for @-mentions in DingTalk and WeCom")
    email: str | None = Field(default=None, max_length=254)
    dingtalk_id: str | None = Field(default=None, max_length=64, description="DingTalk userid")
    wecom_id: str | None = Field(default=None, max_length=64, description="WeCom userid")
    feishu_id: str | None = Field(default=None, max_length=64, description="Feishu open_id")


class ContactOut(BaseModel):
    mobile: str | None
    email: str | None
    dingtalk_id: str | None
    wecom_id: str | None
    feishu_id: str | None


class UserOut(BaseModel):
    name: str
    roles: list[str]
    is_manager: bool
    active: bool
    away: bool
    absence: AbsenceOut | None = Field(description="set while away")
    contact: ContactOut = Field(description="where notifications reach them (seen by the user and managers)")


class HandoverOut(BaseModel):
    task_id: str
    process: str
    step: str
    outcome: str = Field(description="delegated (to the substitute) or released (to the role's queue)")
    to: str | None
    reason: str


class AwayOut(BaseModel):
    user: UserOut
    tasks: list[HandoverOut]
