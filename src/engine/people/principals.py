"""Who is calling, and what their roles let them see and do."""
from __future__ import annotations

from dataclasses import dataclass

MANAGER_ROLES = frozenset({"owner", "operations"})
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Principal:
    """An authenticated user with their roles."""

    name: str
    roles: frozenset[str]

    @property
    def is_manager(self) -> bool:
        """Managers see every task and may assign any of them."""
        return bool(self.roles & MANAGER_ROLES)

    def may_work_on(self, role: str) -> bool:
        """Return whether this user may claim a task of the role."""
        return role in self.roles or self.is_manager
