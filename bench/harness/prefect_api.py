"""A Prefect server read over its REST API: flow-run counts, a run's state history, calls that wait out 503s."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx


def count_flow_runs(prefect_api: str, state_types: list[str], *, flow_name: str | None = None) -> int:
    """Count flow runs in the given Prefect state types (of one flow, when named)."""
    body: dict[str, Any] = {"flow_runs": {"state": {"type": {"any_": state_types}}}}
    if flow_name:
        body["flows"] = {"name": {"any_": [flow_name]}}
    response = httpx.post(f"{prefect_api}/flow_runs/count", json=body, timeout=30)
    response.raise_for_status()
    return int(response.json())


def flow_run_states(prefect_api: str, flow_run_id: str) -> list[tuple[datetime, str, str]]:
    """Return a flow run's states as (timestamp, type, name), oldest first."""
    response = httpx.get(f"{prefect_api}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=30)
    response.raise_for_status()
    states = [
        (datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00")), s["type"], s["name"]) for s in response.json()
    ]
    return sorted(states, key=lambda state: state[0])


def call_patiently(prefect_api: str, method: str, path: str, *, patience: float = 60, **kwargs: Any) -> Any:
    """Send a request until it answers below 500 (a Prefect on SQLite answers 503 while locked); return its JSON."""
    deadline = time.monotonic() + patience
    while True:
        try:
            response = httpx.request(method, f"{prefect_api}{path}", timeout=30, **kwargs)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
        except httpx.TransportError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Prefect {method} {path} kept failing")
        time.sleep(0.5)
