"""Retry the Prefect server's 503s within milliseconds instead of Prefect's client's seconds.

On SQLite the Prefect server answers 503 when a transaction that read first cannot take the
write lock ("database is locked" during state validation); the lock is free again a few
milliseconds later. Prefect's client waits 2, 4, 8 … s between attempts, which made the
turnaround p95 of bench/throughput.py 14 s. This transport first retries a few times quickly;
if the server still answers 503 the client's own retries take over.
"""
from __future__ import annotations

import random
import time
from typing import Any

import httpx

FIRST_DELAY_SECONDS = 0.02
MAX_DELAY_SECONDS = 0.4
ATTEMPTS = 8


class LockRetryTransport(httpx.HTTPTransport):
    """An HTTP transport that resends a request answered 503, with short jittered waits."""

    def __init__(self, *, attempts: int = ATTEMPTS, first_delay: float = FIRST_DELAY_SECONDS,
                 max_delay: float = MAX_DELAY_SECONDS, **kwargs: Any) -> None:
        # Prefect's default transport retries failed connections 3 times; keep that.
        super().__init__(retries=3, **kwargs)
        self._attempts, self._first_delay, self._max_delay = attempts, first_delay, max_delay

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        delay = self._first_delay
        for _ in range(self._attempts - 1):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            # The server rolled the transaction back before answering 503, so sending it again is safe.
            response.close()
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self._max_delay)
        return super().handle_request(request)


def prefect_httpx_settings() -> dict[str, Any]:
    """Return the httpx settings every Prefect client of ours is made with."""
    return {"transport": LockRetryTransport()}
