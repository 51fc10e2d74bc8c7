"""One person using ecomflow's API over HTTP (the same calls as tests/e2e Staff)."""

from __future__ import annotations

from typing import Any

import httpx


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    """Return the response, or raise naming the call when its status is not the expected one."""
    if response.status_code != status:
        raise RuntimeError(f"{what} returned {response.status_code}: {response.text}")
    return response


class Staff:
    """One member of staff with a bearer token and a keep-alive connection to the API."""

    def __init__(self, base_url: str, name: str, token: str) -> None:
        self.name = name
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def start_return(self, params: dict[str, Any], business_key: str) -> dict[str, Any]:
        """Start a returns_exchange instance; return the created instance."""
        response = self.http.post(
            "/processes/returns_exchange/instances", json={"business_key": business_key, "params": params}
        )
        return _expect(response, 201, "start").json()

    def open_tasks(self, **params: Any) -> list[dict[str, Any]]:
        """Return one inbox page of open tasks, newest first."""
        response = self.http.get("/tasks", params={"state": "open", "limit": 200, "sort": "-created", **params})
        return _expect(response, 200, "inbox").json()["items"]

    def claim(self, task_id: str) -> None:
        """Claim a task."""
        _expect(self.http.post(f"/tasks/{task_id}/claim"), 200, "claim")

    def complete(self, task_id: str, data: dict[str, Any]) -> None:
        """Complete a claimed task with its form data."""
        _expect(self.http.post(f"/tasks/{task_id}/complete", json={"data": data}), 200, "complete")

    def instance(self, instance_id: str) -> dict[str, Any]:
        """Return an instance as the API shows it."""
        return _expect(self.http.get(f"/instances/{instance_id}"), 200, "instance").json()

    def close(self) -> None:
        """Close the connection."""
        self.http.close()
