"""Names of processes, steps, roles, priorities and states in the page's language, from flows.yaml and the catalogue."""

from __future__ import annotations

from ecomflow.api.web.i18n import Translator
from ecomflow.engine.definitions.processes import Definitions
from ecomflow.engine.definitions.sla_policy import MANAGERS, PRIORITIES


def process_title(definitions: Definitions, t: Translator, key: str) -> str:
    """Name a process; a process no longer defined keeps its key."""
    spec = definitions.processes.get(key)
    return t.label(spec.label) if spec is not None else key


def step_title(definitions: Definitions, t: Translator, process_key: str, step_key: str) -> str:
    """Name a step of a process; a step no longer defined keeps its key."""
    spec = definitions.processes.get(process_key)
    step = next((s for s in spec.steps if s.key == step_key), None) if spec is not None else None
    return t.label(step.label) if step is not None else step_key


def role_title(definitions: Definitions, t: Translator, key: str | None) -> str:
    """Name a role (or the managers an escalation goes to)."""
    if not key:
        return ""
    if key == MANAGERS:
        return t("role.managers")
    role = definitions.roles.get(key)
    return t.label(role.label) if role is not None else key


def priority_name(priority: int) -> str:
    """Return the flows.yaml name of a priority number: the highest level it reaches (low below all)."""
    reached = [name for name, value in sorted(PRIORITIES.items(), key=lambda item: item[1]) if priority >= value]
    return reached[-1] if reached else "low"
