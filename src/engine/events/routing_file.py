"""notifications.yaml → a frozen RoutingSpec: which events go to which channels, for which roles and processes.

Raises RoutingError (a DefinitionError) listing every problem, each located like flows.yaml's:
`routes[2].events[1]: unknown event 'task.done' (known: ...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ecomflow.engine.config import get_settings
from ecomflow.engine.definitions.current import get_definitions
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.errors import RoutingError

EVENTS = (
    "task.created",
    "task.assigned",
    "task.due_soon",
    "task.reminded",
    "task.overdue",
    "task.escalated",
    "instance.completed",
    "instance.failed",
    "report.daily",
    "daily_digest",
)
LANGUAGES = ("zh", "en")
_TOP_KEYS = ("version", "language", "daily_digest", "routes")
_ROUTE_KEYS = ("events", "channels", "roles", "processes")
_DIGEST_KEYS = ("at", "until", "working_days_only")


@dataclass(frozen=True)
class Route:
    """Events of some roles and processes (None: any) that go to some channels."""

    events: frozenset[str]
    channels: tuple[str, ...]
    roles: frozenset[str] | None = None
    processes: frozenset[str] | None = None

    def matches(self, *, event: str, roles: frozenset[str], process: str | None) -> bool:
        """Tell whether an event of these roles and this process takes this route."""
        if event not in self.events:
            return False
        if self.roles is not None and not self.roles & roles:
            return False
        return self.processes is None or process in self.processes


@dataclass(frozen=True)
class DigestSchedule:
    """When the morning digest is made: from `at` until `until` local time, on working days only or every day."""

    at: time = time(9, 0)
    until: time = time(12, 0)
    working_days_only: bool = True


@dataclass(frozen=True)
class RoutingSpec:
    """The whole notifications file."""

    language: str
    digest: DigestSchedule
    routes: tuple[Route, ...]

    def channels_for(self, *, event: str, roles: frozenset[str], process: str | None) -> tuple[str, ...]:
        """Return the channels an event goes to, each once, in the file's order."""
        found: dict[str, None] = {}
        for route in self.routes:
            if route.matches(event=event, roles=roles, process=process):
                found.update(dict.fromkeys(route.channels))
        return tuple(found)

    @property
    def channel_names(self) -> frozenset[str]:
        """Return every channel some route names."""
        return frozenset(name for route in self.routes for name in route.channels)


def load_routing(path: str | Path, definitions: Definitions) -> RoutingSpec:
    """Read and validate a notifications file against the process definitions; raise RoutingError on any problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingError([f"{path}: cannot read the notifications file ({exc})"]) from None
    except yaml.YAMLError as exc:
        raise RoutingError([f"{path}: not valid YAML: {exc}"]) from None
    try:
        return parse_routing(raw, definitions)
    except RoutingError as exc:
        raise RoutingError([f"{path}: {problem}" for problem in exc.problems]) from None


def parse_routing(raw: Any, definitions: Definitions) -> RoutingSpec:
    """Validate a loaded notifications mapping; raise RoutingError listing every problem."""
    if not isinstance(raw, Mapping):
        raise RoutingError([f"(top level): expected a mapping with version and routes, got {type(raw).__name__}"])
    problems: list[str] = [
        f"{key}: unknown top-level key (allowed: {', '.join(_TOP_KEYS)})" for key in raw if key not in _TOP_KEYS
    ]
    if raw.get("version") != 1:
        problems.append(f"version: expected 1, got {raw.get('version')!r}")
    language = raw.get("language", "zh")
    if language not in LANGUAGES:
        problems.append(f"language: expected one of {', '.join(LANGUAGES)}, got {language!r}")
    digest = _read_digest(raw.get("daily_digest", {}), problems)
    routes = _read_routes(raw.get("routes"), definitions, problems)
    if problems:
        raise RoutingError(problems)
    return RoutingSpec(language=language, digest=digest, routes=routes)


def _read_digest(raw: Any, problems: list[str]) -> DigestSchedule:
    if not isinstance(raw, Mapping):
        problems.append("daily_digest: expected a mapping with at, until and working_days_only")
        return DigestSchedule()
    problems.extend(
        f"daily_digest.{key}: unknown key (allowed: {', '.join(_DIGEST_KEYS)})"
        for key in raw
        if key not in _DIGEST_KEYS
    )
    default = DigestSchedule()
    at = _read_time(raw.get("at", "09:00"), "daily_digest.at", problems) or default.at
    until = _read_time(raw.get("until", "12:00"), "daily_digest.until", problems) or default.until
    if until <= at:
        problems.append(f"daily_digest.until: must be later than at ({at:%H:%M}), got {until:%H:%M}")
    working_days_only = raw.get("working_days_only", True)
    if not isinstance(working_days_only, bool):
        problems.append(f"daily_digest.working_days_only: expected true or false, got {working_days_only!r}")
        working_days_only = True
    return DigestSchedule(at=at, until=until, working_days_only=working_days_only)


def _read_time(raw: Any, where: str, problems: list[str]) -> time | None:
    try:
        hours, minutes = str(raw).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        problems.append(f"{where}: expected a local time as HH:MM, got {raw!r}")
        return None


def _read_routes(raw: Any, definitions: Definitions, problems: list[str]) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        problems.append("routes: expected a list of {events, channels, roles?, processes?}")
        return ()
    routes = []
    for index, entry in enumerate(raw):
        where = f"routes[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping with events and channels")
            continue
        problems.extend(
            f"{where}.{key}: unknown key (allowed: {', '.join(_ROUTE_KEYS)})" for key in entry if key not in _ROUTE_KEYS
        )
        events = _read_names(entry.get("events"), f"{where}.events", EVENTS, "event", problems)
        channels = _read_names(entry.get("channels"), f"{where}.channels", None, "channel", problems)
        roles = processes = None
        if "roles" in entry:
            roles = frozenset(_read_names(entry["roles"], f"{where}.roles", tuple(definitions.roles), "role", problems))
        if "processes" in entry:
            known = tuple(definitions.processes)
            processes = frozenset(_read_names(entry["processes"], f"{where}.processes", known, "process", problems))
        routes.append(Route(events=frozenset(events), channels=channels, roles=roles, processes=processes))
    return tuple(routes)


def _read_names(raw: Any, where: str, known: tuple[str, ...] | None, what: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: expected a non-empty list of {what} names")
        return ()
    names = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not name:
            problems.append(f"{where}[{index}]: expected a {what} name, got {name!r}")
        elif known is not None and name not in known:
            problems.append(f"{where}[{index}]: unknown {what} {name!r} (known: {', '.join(known)})")
        else:
            names.append(name)
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=1)
def get_routing() -> RoutingSpec:
    """Return the validated routing of the configured notifications file, read once per process."""
    return load_routing(get_settings().notifications_path, get_definitions())
