"""One Prefect flow per process of flows.yaml, in a module named after the process."""

from __future__ import annotations

import importlib

from prefect import Flow

from ecomflow.engine.definitions.current import get_definitions


def implemented_flows() -> dict[str, Flow]:
    """Return the flow of every process that has its module here, by process key."""
    flows = {}
    for key in get_definitions().processes:
        try:
            module = importlib.import_module(f"ecomflow.flows.{key}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ecomflow.flows.{key}":
                raise  # a broken import inside an existing flow module must not hide
            continue
        flows[key] = getattr(module, key)
    return flows
