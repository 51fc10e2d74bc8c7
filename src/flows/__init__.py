"""One Prefect flow per process of flows.yaml, in a module named after the process."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from prefect import Flow

from ecomflow.engine.definitions.current import get_definitions


def implemented_flows() -> dict[str, Flow]:
    """Return the flow of every process that has its module here, by process key."""
    return flows_of(get_definitions().processes)


def flows_of(process_keys: Iterable[str]) -> dict[str, Flow]:
    """Return the flow of each of these processes that has its module here."""
    flows = {}
    for key in process_keys:
        try:
            module = importlib.import_module(f"ecomflow.flows.{key}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ecomflow.flows.{key}":
                raise  # a broken import inside an existing flow module must not hide
            continue
        flows[key] = getattr(module, key)
    return flows


def runnable_versions(process_keys: Iterable[str]) -> dict[str, frozenset[int]]:
    """Return, per process, the flows.yaml versions its flow module was written for (absent: no module)."""
    return {key: flow.fn.written_for for key, flow in flows_of(process_keys).items()}
