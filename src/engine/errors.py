"""Domain errors, each about one object and saying its id and state.

EcomflowError
├── NotFound            the object does not exist, or the caller may not see it
│   ├── DefinitionMissing   flows.yaml has no such process or step
│   │   ├── UnknownProcess      no process with that key
│   │   ├── UnknownStep         the process has no step with that key
│   │   └── VersionMissing      the database holds no such stored definition version
│   └── BlobMissing         the store has no bytes under an attachment's key
├── Forbidden           the caller may see it but not do this
├── Conflict            the object's state forbids this now
│   ├── IllegalTransition   the task state machine refuses the move
│   ├── AlreadyClaimed      another user holds the task
│   ├── FourEyesViolation   the approver did the work being approved
│   ├── VersionMismatch     If-Match names an older version
│   ├── UnrunnableVersion   no loaded flow module was written for an instance's definition version
│   ├── MigrationRefused    running instances cannot be moved to another version as asked
│   └── StockShort          a movement would take a SKU's stock at a location below zero
├── PayloadTooLarge     an upload outgrew the server's limit while it streamed in
├── ValidationFailed    a payload broke form rules; carries one FieldProblem per field
├── Unauthorized        no valid token
├── TooManyAttempts     too many failed sign-ins: locked until a moment it names
└── DefinitionError     flows.yaml is unreadable or invalid; carries every problem found
    ├── FormDefinitionError a form in it is malformed
    └── RoutingError        notifications.yaml is unreadable or invalid

Signals that never leave their module stay beside it and outside this tree: InstanceEnded
(flows/primitives.py, stops a flow run whose instance ended), the outbox's Undeliverable,
NotDeliverableYet, Deferred, WebhookFailed and ChannelRefused (the dispatcher turns them into retries or a failed
message) and the stock ledger's _Short (rolls back an order's reservation). The HTTP layer's own
(api/nul_guard.NulRefused, an HTTPException; the web pages' SignInRequired, CsrfRefused and
PageRefused, each rendered by its handler) are about requests, not domain objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EcomflowError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, detail: str, **about: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.about = about


class NotFound(EcomflowError):
    """The object does not exist or is not visible to the caller."""


class Forbidden(EcomflowError):
    """The caller may not perform this action."""


class Unauthorized(EcomflowError):
    """The caller presented no valid credentials."""


class TooManyAttempts(EcomflowError):
    """Too many failed attempts: the action is refused until the moment in `about["until"]`."""


class Conflict(EcomflowError):
    """The object's current state forbids the action."""


class IllegalTransition(Conflict):
    """The task state machine refuses this transition."""


class AlreadyClaimed(Conflict):
    """Another user already holds the task."""


class FourEyesViolation(Conflict):
    """An approval may not be completed by the person whose work it approves."""


class VersionMismatch(Conflict):
    """The caller's version of the object is stale."""


class PayloadTooLarge(EcomflowError):
    """A request body (an upload) outgrew its limit while it streamed in."""


class UnrunnableVersion(Conflict):
    """No loaded flow module was written for the definition version an instance runs on."""


class MigrationRefused(Conflict):
    """Running instances cannot be moved to the version asked for; `.problems` names each reason."""

    def __init__(self, detail: str, *, problems: Sequence[str], **about: Any) -> None:
        super().__init__(detail, **about)
        self.problems = list(problems)


class StockShort(Conflict):
    """A stock movement would take a SKU's on-hand or available stock at a location below zero."""

    def __init__(self, *, sku: str, location: str, wanted: int, available: int) -> None:
        super().__init__(
            f"stock of SKU {sku} at {location}: {wanted} wanted, {available} available; stock never goes negative",
            sku=sku,
            location=location,
        )
        self.sku, self.location, self.wanted, self.available = sku, location, wanted, available


class ValidationFailed(EcomflowError):
    """Submitted data broke the rules of its form."""

    def __init__(self, detail: str, *, problems: Sequence[Any]) -> None:
        super().__init__(detail)
        self.problems = list(problems)


class DefinitionMissing(NotFound):
    """flows.yaml defines no such process or step."""


class UnknownProcess(DefinitionMissing):
    """No process with this key is defined."""

    def __init__(self, key: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown process {key!r} (defined: {', '.join(known)})", process=key)
        self.key = key


class UnknownStep(DefinitionMissing):
    """The process has no step with this key."""

    def __init__(self, process: str, key: str, known: Sequence[str]) -> None:
        super().__init__(
            f"process {process!r} has no step {key!r} (steps: {', '.join(known)})", process=process, step=key
        )
        self.process, self.key = process, key


class BlobMissing(NotFound):
    """The attachment store has no bytes under the key."""


class VersionMissing(DefinitionMissing):
    """The database holds no stored definition version with this process and number."""

    def __init__(self, process: str, version: int, stored: Sequence[int]) -> None:
        held = ", ".join(map(str, stored)) or "none; run `ecomflow migrate`"
        super().__init__(
            f"process {process!r} has no stored definition version {version} (stored: {held})",
            process=process,
            version=version,
        )


class DefinitionError(EcomflowError):
    """flows.yaml is unreadable or invalid; `.problems` holds one located sentence per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class FormDefinitionError(DefinitionError):
    """A form in flows.yaml is malformed; `.problems` lists each one with its location."""


class RoutingError(DefinitionError):
    """notifications.yaml cannot be read or is invalid; carries every problem found."""
