"""The loaded flows.yaml, read once per process."""

from __future__ import annotations

from functools import lru_cache

from ecomflow.engine.config import get_settings
from ecomflow.engine.definitions.processes import Definitions, load_definitions


@lru_cache(maxsize=1)
def get_definitions() -> Definitions:
    """Return the validated process definitions from the configured flows.yaml."""
    return load_definitions(get_settings().definitions_path)
