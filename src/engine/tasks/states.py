"""The human-task state machine: the allowed moves as data, checked before anything is saved."""

from __future__ import annotations

from enum import StrEnum

from ecomflow.engine.errors import IllegalTransition


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class TaskAction(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    ASSIGN = "assign"
    DELEGATE = "delegate"
    COMPLETE = "complete"
    CANCEL = "cancel"
    EXPIRE = "expire"


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.CANCELLED, TaskState.EXPIRED})
ACTIVE_STATES = frozenset({TaskState.OPEN, TaskState.CLAIMED})

TRANSITIONS: dict[tuple[TaskState, TaskAction], TaskState] = {
    (TaskState.OPEN, TaskAction.CLAIM): TaskState.CLAIMED,
    (TaskState.OPEN, TaskAction.ASSIGN): TaskState.CLAIMED,
    (TaskState.CLAIMED, TaskAction.ASSIGN): TaskState.CLAIMED,
    # The holder (or a manager) hands a claimed task to a colleague; an open one is claimed or assigned.
    (TaskState.CLAIMED, TaskAction.DELEGATE): TaskState.CLAIMED,
    (TaskState.CLAIMED, TaskAction.RELEASE): TaskState.OPEN,
    (TaskState.CLAIMED, TaskAction.COMPLETE): TaskState.COMPLETED,
    (TaskState.OPEN, TaskAction.CANCEL): TaskState.CANCELLED,
    (TaskState.CLAIMED, TaskAction.CANCEL): TaskState.CANCELLED,
    (TaskState.OPEN, TaskAction.EXPIRE): TaskState.EXPIRED,
    (TaskState.CLAIMED, TaskAction.EXPIRE): TaskState.EXPIRED,
}


PAST_TENSE = {
    TaskAction.CLAIM: "claimed",
    TaskAction.RELEASE: "released",
    TaskAction.ASSIGN: "assigned",
    TaskAction.DELEGATE: "delegated",
    TaskAction.COMPLETE: "completed",
    TaskAction.CANCEL: "cancelled",
    TaskAction.EXPIRE: "expired",
}

# What to do instead, for the refusals people run into.
HINTS = {
    (TaskState.OPEN, TaskAction.COMPLETE): "; claim it first",
    (TaskState.OPEN, TaskAction.DELEGATE): "; only a claimed task is delegated, assign an open one",
}


def next_state(current: str, action: TaskAction, *, task_id: str) -> TaskState:
    """Return the state an action leads to, or raise IllegalTransition naming the task."""
    target = TRANSITIONS.get((TaskState(current), action))
    if target is None:
        hint = HINTS.get((TaskState(current), action), "")
        raise IllegalTransition(
            f"task {task_id} is {current} and cannot be {PAST_TENSE[action]}{hint}",
            task_id=task_id,
            state=current,
            action=action.value,
        )
    return target
