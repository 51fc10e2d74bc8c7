"""Which processes have a flow to run them (a module in src/flows named after the process)."""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec


@lru_cache(maxsize=64)
def has_flow(process_key: str) -> bool:
    """Return whether a flow module exists for the process, without importing it."""
    return find_spec(f"ecomflow.flows.{process_key}") is not None
