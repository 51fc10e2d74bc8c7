"""Who is calling: a user's name and roles. What they may do is decided in engine/access.py alone."""

from __future__ import annotations

from dataclasses import dataclass

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Principal:
    """An authenticated user with their roles."""

    name: str
    roles: frozenset[str]


# Schedules, parent steps and the sweeper act as the system: it starts any process and holds no role.
SYSTEM = Principal(name=SYSTEM_ACTOR, roles=frozenset())
